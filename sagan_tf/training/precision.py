"""The Keras dtype policy GAN training runs under (`train.precision`).

`auto` picks what the hardware computes fast. bfloat16 is fast only where
the chip has bfloat16 arithmetic: on GPUs of compute capability 8.0 and up,
and on CPUs with AMX-BF16 or AVX512-BF16. Elsewhere TF emulates it; on a
2-core AVX2 CPU the demo's training step ran 6.6x slower in mixed_bfloat16
than in float32 (12.7 against 83.2 images/s), which turned the 15-minute
main job into hours. Older GPUs (7.x) get mixed_float16 with loss scaling.
"""

import contextlib
import warnings

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# /proc/cpuinfo flags of CPUs that compute in bfloat16 natively.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = "/proc/cpuinfo"


def cpu_flags(path=CPUINFO):
    """The CPU's feature flags from /proc/cpuinfo; empty where it cannot be read (not Linux)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def gpu_compute_capabilities():
    """(major, minor) of each visible GPU."""
    import tensorflow as tf  # here, so that the config can read PRECISIONS without TensorFlow

    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
            for gpu in tf.config.list_physical_devices("GPU")]


def native_bfloat16_cpu(flags):
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def resolve(precision, capabilities=None, flags=None):
    """The policy name `precision` stands for on this machine.

    `capabilities` (GPU compute capabilities) and `flags` (CPU flags) default
    to the machine's own; tests pass them in.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    capabilities = gpu_compute_capabilities() if capabilities is None else capabilities
    flags = cpu_flags() if flags is None else flags
    if precision == "auto":
        if capabilities:
            slowest = min(capabilities)
            if slowest >= (8, 0):
                return "mixed_bfloat16"
            return "mixed_float16" if slowest >= (7, 0) else "float32"
        return "mixed_bfloat16" if native_bfloat16_cpu(flags) else "float32"
    if precision == "mixed_bfloat16" and not capabilities and not native_bfloat16_cpu(flags):
        warnings.warn("train.precision=mixed_bfloat16 on a CPU without bfloat16 units (no "
                      f"{' or '.join(BFLOAT16_CPU_FLAGS)} among its flags): TF emulates bfloat16 there, "
                      "several times slower than float32. train.precision=auto picks float32 here.",
                      stacklevel=2)
    return precision


@contextlib.contextmanager
def policy_scope(name):
    """Runs the block under the Keras global dtype policy `name`; the previous one is restored after."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
