"""The model learns a new source by itself: FEBRL 1 (no e-mail, no phone) loaded through the
real ingestion is resolved by the platform's entity run, which re-estimates the model (saved,
versioned), checks it and re-links; the next run keeps it."""

from __future__ import annotations

import json

import pytest

from creditlake.entity.model import load_model
from creditlake.entity.run import run_entities
from creditlake.ingest.pipeline import ingest_paths

pytestmark = pytest.mark.integration


def test_febrl1_is_learned_without_a_manual_step(engine, settings, tmp_path) -> None:
    from bench.entity_accuracy import export, scores

    home = tmp_path / "home"
    ingest_paths(engine, home, export("febrl1", tmp_path / "files"),
                 processing=settings.processing)
    run = run_entities(engine, home)
    est = run.estimation
    assert est.status == "estimated", json.dumps(est.as_dict())
    assert "email" in est.reason and est.previous_version == load_model().version
    assert load_model(home=home).version == run.model.version  # saved and used from now on
    assert run.result.mode == "full"
    s = scores(engine)
    assert s["f1"] >= 0.97, s
    again = run_entities(engine, home)
    assert again.estimation.status == "kept" and again.result.records_in == 0
