import pytest

from sagan_tf import config as config_module
from sagan_tf.training import precision

AMX_CPU = frozenset({"avx512f", "amx_bf16", "amx_tile"})
AVX512_BF16_CPU = frozenset({"avx512f", "avx512_bf16"})
AVX2_CPU = frozenset({"avx2", "fma"})


@pytest.mark.parametrize("capabilities, flags, expected", [
    ([], AMX_CPU, "mixed_bfloat16"),
    ([], AVX512_BF16_CPU, "mixed_bfloat16"),
    ([], AVX2_CPU, "float32"),
    ([], frozenset(), "float32"),  # no /proc/cpuinfo: the safe choice
    ([(9, 0)], AVX2_CPU, "mixed_bfloat16"),  # the GPU decides, not the host CPU
    ([(8, 0), (8, 6)], AVX2_CPU, "mixed_bfloat16"),
    ([(7, 5)], AMX_CPU, "mixed_float16"),
    ([(8, 0), (7, 0)], AMX_CPU, "mixed_float16"),  # the oldest GPU decides
    ([(6, 1)], AMX_CPU, "float32"),
])
def test_auto_picks_what_the_hardware_computes_fast(capabilities, flags, expected):
    assert precision.resolve("auto", capabilities, flags) == expected


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_an_explicit_policy_is_kept(policy):
    assert precision.resolve(policy, [], AMX_CPU) == policy
    assert precision.resolve(policy, [(7, 0)], AVX2_CPU) == policy


def test_emulated_bfloat16_warns(recwarn):
    with pytest.warns(UserWarning, match="without bfloat16 units.*auto picks float32"):
        assert precision.resolve("mixed_bfloat16", [], AVX2_CPU) == "mixed_bfloat16"
    precision.resolve("mixed_bfloat16", [], AMX_CPU)
    precision.resolve("mixed_bfloat16", [(8, 0)], AVX2_CPU)
    assert not recwarn.list


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="train.precision must be one of auto, float32"):
        precision.resolve("bfloat16", [], AMX_CPU)
    with pytest.raises(config_module.ConfigError, match="precision"):
        config_module.load(None, ["train.precision=bfloat16"])


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                       "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\nbogomips\t: 4000\n"
                       "processor\t: 1\nflags\t\t: fpu avx2\n")
    flags = precision.cpu_flags(str(cpuinfo))
    assert flags == {"fpu", "avx2", "avx512f", "amx_bf16", "amx_tile"}
    assert precision.native_bfloat16_cpu(flags)
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()
    assert precision.resolve("auto", [], precision.cpu_flags(str(tmp_path / "missing"))) == "float32"


def test_policy_scope_restores_the_policy_that_was_set_before():
    import keras

    with precision.policy_scope("mixed_float16"):
        with precision.policy_scope("mixed_bfloat16"):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        with pytest.raises(RuntimeError):
            with precision.policy_scope("mixed_bfloat16"):
                raise RuntimeError("the block failed")
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"
