"""The serving engine: discrete-event simulation of aggregated and disaggregated LLM serving.

See ``docs/ENGINE.md``. Entry points: :func:`simulate_aggregated`, :func:`simulate_disaggregated`; both
return a :class:`SimResult`.
"""

from .aggregated import SimResult, simulate_aggregated
from .disaggregated import simulate_disaggregated

__all__ = ["SimResult", "simulate_aggregated", "simulate_disaggregated"]
