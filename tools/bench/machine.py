"""What machine a bench ran on, measured in the same run: the CPU's model and features (AVX2, AVX-512, AVX-512 BF16,
AMX), the cores this process may use, torch's threads, the matmul peak in fp32 and in bf16, and the precision alignkit
chose. Not a bench itself (no `bench_` prefix): tools/bench.py prints `lines()` first, the runner benches measure the
peaks between their trainings with `matmul_gflops`.

The bf16 peak is measured on every machine, emulated or not, in bounded time: the size of the matmul is chosen from
one small timing so that one product takes ≤ ~0.5 s (on a CPU without native bf16 a 2048² bf16 matmul takes ~20 s;
there the size drops to ~512², and that is said)."""
import os, platform

FEATURES = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "AVX-512 BF16": ("avx512_bf16",), "AMX": ("amx_bf16", "amx_tile")}

def cpu_info() -> dict:
    "model name, features (name -> bool, from /proc/cpuinfo's flags), and the cores this process may run on."
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name": model = v.strip()
                if k == "flags": flags = set(v.split()); break
    except OSError: pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return dict(model=model, features={n: any(f in flags for f in fl) for n, fl in FEATURES.items()}, cores=cores)

def matmul_gflops(dtype, n:int=2048, reps:int=5, max_s:float=0.5) -> tuple[float, int]:
    "(best GFLOP/s of n×n @ n×n in `dtype` over `reps`, the n used): `alignkit.models.matmul_speed`, smaller where one product would take > `max_s`."
    import torch
    from alignkit.models import matmul_speed
    name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
    s = matmul_speed(n, reps, max_s, precisions=(name,))
    return s[name], s["n"][name]

def precision() -> tuple[str, str]:
    "(the precision alignkit trains in here, why)."
    from alignkit.models import NO_NATIVE_BF16_ENV, best_precision, bf16_native
    sim = os.environ.get(NO_NATIVE_BF16_ENV, "") not in ("", "0")
    why = ("bf16 native here" if bf16_native("cpu") else
           f"no native bf16{' (simulated: ' + NO_NATIVE_BF16_ENV + ' is set)' if sim else ''}: bf16 would be emulated")
    return best_precision("cpu"), why

def lines() -> list[str]:
    "The machine's figures as `name: value (goal: context; …)` lines."
    import torch
    c = cpu_info()
    feats = ", ".join(f"{n} {'yes' if v else 'no'}" for n, v in c["features"].items())
    prec, why = precision()
    cap = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    return [f"machine/cpu: {c['model']} (goal: context; {feats}; torch's kernels: {cap})",
            f"machine/cores: {c['cores']} (goal: context; torch threads {torch.get_num_threads()})",
            f"machine/alignkit_precision: {prec} (goal: context; {why})"]

if __name__ == "__main__": print("\n".join(lines()))
