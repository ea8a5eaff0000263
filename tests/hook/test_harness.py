"""The PostgreSQL harness runs a cluster from a checkout inside a mode-700 folder (issue 22)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.hook.pgcluster import NO_SERVER, find_install, pg_cluster


def test_a_cluster_runs_from_an_installation_in_a_private_folder() -> None:
    install = find_install()
    if install is None:
        pytest.skip(NO_SERVER)
    private = Path(tempfile.mkdtemp(prefix="meter-private-"))  # mode 700, like `mktemp -d`
    try:
        inside = install.copy(private / "pg")
        with pg_cluster(inside) as cluster, psycopg.connect(cluster.dsn()) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        # As root the cluster runs as another user, who cannot enter the private folder: the
        # harness runs a temporary copy, gone now. Anyone else runs the binaries in place.
        copied = os.geteuid() == 0
        assert (cluster.bindir != inside.bindir) is copied
        assert cluster.bindir.exists() is not copied
        assert not cluster.home.exists()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(private)
