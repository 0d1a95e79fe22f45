"""fbi3d/cpu.py: CPU flags and the oneDNN setting chosen from them."""

from fbi3d import cpu


def test_cpu_flags_reads_the_first_flags_line(tmp_path):
  info = tmp_path / 'cpuinfo'
  info.write_text('processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n'
                  'processor\t: 1\nflags\t\t: fpu avx512f\n')
  assert cpu.cpu_flags(str(info)) == {'fpu', 'sse2', 'avx2', 'fma'}
  assert cpu.cpu_flags(str(tmp_path / 'none')) == set()


def test_native_bfloat16():
  assert cpu.has_native_bfloat16({'avx512f', 'avx512_bf16'})
  assert cpu.has_native_bfloat16({'amx_bf16'})
  assert not cpu.has_native_bfloat16({'avx2', 'avx512f'})


def test_onednn_is_turned_off_on_avx2_cpus_only_and_never_over_the_user():
  assert cpu.onednn_setting({'avx2', 'fma'}, {}) == '0'
  assert cpu.onednn_setting({'avx2', 'avx512f'}, {}) is None
  assert cpu.onednn_setting({'avx2', 'avx512f', 'avx512_bf16'}, {}) is None
  assert cpu.onednn_setting({'sse2'}, {}) is None           # not an AVX2 x86 CPU
  assert cpu.onednn_setting({'avx2'}, {'TF_ENABLE_ONEDNN_OPTS': '1'}) is None


def test_configure_writes_only_the_variable(tmp_path):
  info = tmp_path / 'cpuinfo'
  info.write_text('flags\t\t: avx2 fma\n')
  env = {'PATH': '/bin'}
  assert cpu.configure(env, str(info)) == '0'
  assert env == {'PATH': '/bin', 'TF_ENABLE_ONEDNN_OPTS': '0'}
  env = {'TF_ENABLE_ONEDNN_OPTS': '1'}
  assert cpu.configure(env, str(info)) is None and env == {'TF_ENABLE_ONEDNN_OPTS': '1'}
