"""Run ``ogiri_train`` with ``dag.test()`` as the scheduler starts it on drift (demo and tests).

``dag.test()`` creates a manual run that consumed no asset events, so a drift-triggered run could
not be shown without a scheduler. :func:`test_on_drift` runs the same ``dag.test()`` with the run
consuming the latest ``ogiri_drift`` events (``dag_run.consumed_asset_events``, what the tasks see as
``triggering_asset_events``), exactly what an asset-triggered run carries.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch


def drift_events(session: Any, limit: int = 1) -> list[Any]:
    """The latest ``ogiri_drift`` asset events (newest first), as the scheduler would queue them."""
    from airflow.models.asset import AssetEvent, AssetModel
    from sqlalchemy import select

    query = (select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
             .where(AssetModel.name == "ogiri_drift").order_by(AssetEvent.timestamp.desc()).limit(limit))
    return list(session.scalars(query))


def test_on_drift(dag: Any, **test_kwargs: Any) -> Any:
    """``dag.test(**test_kwargs)`` of ``ogiri_train`` whose run consumed the latest ``ogiri_drift`` event
    (raises when there is none). Returns the DagRun."""
    import airflow.models.dagrun as dagrun_module
    from airflow import settings

    original = dagrun_module.get_or_create_dagrun

    def with_drift(**kwargs: Any) -> Any:
        session = kwargs["session"]
        events = drift_events(session)
        if not events:
            raise LookupError("no ogiri_drift asset event to consume: run ogiri_monitor on a drifted window first")
        run = original(**kwargs)
        run.consumed_asset_events.extend(events)
        session.commit()
        return run

    if settings.Session is None:
        raise RuntimeError("Session not configured. Call configure_orm() first.")
    with patch.object(dagrun_module, "get_or_create_dagrun", with_drift):
        return dag.test(**test_kwargs)


test_on_drift.__test__ = False  # a helper, not a pytest test
