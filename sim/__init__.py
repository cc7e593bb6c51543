"""latentmoe-sim: project how fast a Mixture-of-Experts LLM can be served."""
__version__ = "0.1.0"
