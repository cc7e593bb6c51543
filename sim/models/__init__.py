"""Model architectures: the ModelSpec schema, the bundled catalog and Hugging Face config import."""

from .catalog import list_models, load_model, spec_from_dict
from .spec import BYTES_PER_ELEMENT, Attention, Mamba, ModelSpec, MoE, Precision, dtype_bytes, to_latentmoe

__all__ = [
    "Attention", "BYTES_PER_ELEMENT", "Mamba", "ModelSpec", "MoE", "Precision",
    "dtype_bytes", "list_models", "load_model", "spec_from_dict", "to_latentmoe",
]
