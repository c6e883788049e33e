"""The test's own PostgreSQL cluster survives an immediate stop with its committed rows."""

from __future__ import annotations

from tests.pgcluster import PostgresCluster


def test_cluster_crash_keeps_committed_rows(pg_cluster: PostgresCluster) -> None:
    assert (pg_cluster.data_dir / "PG_VERSION").exists()
    pg_cluster.execute("CREATE TABLE t (id int PRIMARY KEY, body text)")
    pg_cluster.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    path = pg_cluster.relation_path("t")
    assert path.is_relative_to(pg_cluster.data_dir)
    pg_cluster.stop(mode="immediate")  # a crash: no shutdown checkpoint
    assert not pg_cluster.running
    port = pg_cluster.port
    pg_cluster.start()  # WAL replay
    assert pg_cluster.port == port
    assert pg_cluster.execute("SELECT id, body FROM t ORDER BY id") == [(1, "one"), (2, "two")]
    pg_cluster.execute("CHECKPOINT")
    assert pg_cluster.relation_path("t").stat().st_size == 8192  # one heap page, now on disk
    url = pg_cluster.create_database("other")
    assert url.endswith(f"127.0.0.1:{port}/other")
