"""machine.py: the CPU facts recorded beside results and printed by `notelm reproduce`."""

from __future__ import annotations

from notelm import machine


def test_cpu_info_reads_the_model_and_the_flags_that_pick_kernels(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Xeon X\nflags\t\t: fpu avx2 avx512f avx512_bf16 sse\n"
                    "processor\t: 1\nmodel name\t: Xeon X\nflags\t\t: fpu avx2\n")
    assert machine.cpu_info(info) == ("Xeon X", ["avx2", "avx512f", "avx512_bf16"])
    assert machine.cpu_info(tmp_path / "none")[1] == []


def test_facts_and_their_line():
    f = machine.facts()
    assert f["cores"] >= 1 and f["precision_auto"] in ("bf16", "fp32") and f["torch"]
    line = machine.describe({**f, "flags": [], "gpu": None})
    assert line.startswith(f"{f['cpu']}, {f['cores']} cores, flags none of avx2/") and f"torch {f['torch']}" in line
