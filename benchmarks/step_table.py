"""Step times of the three Kimi-K2 variants at three shapes on GB200 FP4 and H200 FP8 (issue 10's Show).

Prints a markdown table: step time (ms) of Kimi-K2-1T, Kimi-K2-1T-LatentMoE and Kimi-K2-1.35T, and the
ratios LatentMoE/1T and 1.35T/LatentMoE, for

* decode at batch 8 per rank (context 4,096 tokens each),
* decode at batch 128 per rank (context 4,096 tokens each),
* prefill of one 8,192-token chunk per rank (offset 0),

with attention DP over 16 GPUs, EP16 (TP1 x DP16: one NVL72 domain on GB200, two HGX nodes on H200).
The step cost only (``CostModel.step_time``): memory fit is not checked, so 1.35T appears on H200 too.
GB200 uses NVFP4 weights, FP4 GEMMs, FP4 dispatch and BF16 combine (the paper's §2 setting); H200 the
catalog's FP8 checkpoints (FP8 weights and GEMMs, FP8 dispatch, BF16 combine).

Run: ``python benchmarks/step_table.py`` (the 'before' column of docs/MODELING.md §9 was printed by this
script at commit aa78c1e, before the issue-10 corrections).
"""

from __future__ import annotations

from latentmoe_sim.cost import CostModel, RankLoad, chunk_load
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan

MODELS = ("kimi-k2-1t", "kimi-k2-1t-latentmoe", "kimi-k2-1.35t")
DP = 16
KV_LEN = 4096
SHAPES = {
    "decode b8": RankLoad(0, 0.0, 0, 8, 8 * KV_LEN),
    "decode b128": RankLoad(0, 0.0, 0, 128, 128 * KV_LEN),
    "prefill 8192": RankLoad(*chunk_load(8192, 0), 0, 0),
}


def systems():
    fp4 = lambda m: m.with_precision(weights="fp4", activations="fp4", dispatch="fp4", combine="bf16")  # noqa: E731
    return {"GB200 FP4": (load_hw("gb200_nvl72"), fp4), "H200 FP8": (load_hw("h200_sxm"), lambda m: m)}


def table() -> list[tuple[str, str, float, float, float]]:
    """Rows (system, shape, t_1T, t_LatentMoE, t_1.35T) in seconds."""
    plan = ParallelPlan(tp=1, dp=DP, ep=DP)
    rows = []
    for sys_name, (hw, prec) in systems().items():
        costs = [CostModel(prec(load_model(m)), hw, plan) for m in MODELS]
        for shape, load in SHAPES.items():
            t = [c.step_time([load] * DP) for c in costs]
            rows.append((sys_name, shape, *t))
    return rows


def main() -> None:
    print(f"TP1 x DP{DP} (EP{DP}); decode context {KV_LEN} tokens; step time in ms")
    print("| system | shape | 1T | LatentMoE | 1.35T | LatentMoE/1T | 1.35T/LatentMoE |")
    print("|---|---|---|---|---|---|---|")
    for sys_name, shape, a, b, c in table():
        print(f"| {sys_name} | {shape} | {a * 1e3:.2f} | {b * 1e3:.2f} | {c * 1e3:.2f} | {b / a:.3f} | {c / b:.3f} |")


if __name__ == "__main__":
    main()
