"""cluster/local.py: the one-node Slurm's configuration and why it cannot start (its run: tests/test_cluster.py)."""

from __future__ import annotations

from pathlib import Path

from notelm.cluster import local


def test_the_config_keeps_every_file_under_its_root_and_offers_every_cpu(tmp_path):
    text = local.config(tmp_path, "node1", 2, 1000, (7001, 7002))
    assert "SlurmctldHost=node1(127.0.0.1)" in text and "SlurmctldPort=7001" in text and "SlurmdPort=7002" in text
    assert "NodeName=node1 NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000" in text
    assert f"AuthInfo=socket={tmp_path / 'munge.socket'}" in text
    paths = [line.split("=", 1)[1] for line in text.splitlines()
             if line.split("=")[0].endswith(("Location", "Dir", "File"))]
    assert len(paths) == 6 and all(Path(p).parent == tmp_path for p in paths)


def test_without_slurm_and_without_apt_it_says_what_to_install(monkeypatch):
    monkeypatch.setattr(local, "missing", lambda: ["slurmctld", "sbatch"])
    monkeypatch.setenv("NOTELM_NO_APT", "1")
    assert local.install() == "slurmctld, sbatch missing and NOTELM_NO_APT is set"
    monkeypatch.delenv("NOTELM_NO_APT")
    monkeypatch.setattr(local.os, "geteuid", lambda: 1000)
    assert "apt-get install slurm-wlm munge` (as root)" in local.install()


def test_stop_without_daemons_is_harmless_and_the_cli_explains_itself(tmp_path, capsys):
    local.stop(tmp_path)
    assert local.main(["status"]) == 2
    assert "python -m notelm.cluster.local start" in capsys.readouterr().err
