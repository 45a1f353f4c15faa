"""The default model against human observations that are *not* in the calibration table
(``csfmodel.validation.predictions``; discussed in docs/validation.md)."""

import pytest

from csfmodel.validation._predictions import predictions


@pytest.fixture(scope="module")
def numbers():
    return predictions()[0]


def test_lumbar_tracer_reaches_blood_when_observed(numbers):
    # Eide 2021 JCI Insight 6:e147063: after 0.5 mmol gadobutrol in 0.5 mL at the lumbar
    # level, blood peaks at about 10 h (n=29 reference patients); a factor-two band
    tmax = numbers["tracer"]["lumbar tracer: plasma peak time (h)"]
    assert 5.0 <= tmax <= 20.0


def test_lumbar_tracer_cranial_order(numbers):
    # the tracer reaches the basal cisterns before the cortical SAS and blood
    tr = numbers["tracer"]
    assert (tr["lumbar tracer: cisternal CSF peak time (h)"]
            < tr["lumbar tracer: cortical CSF peak time (h)"]
            <= tr["lumbar tracer: plasma peak time (h)"])


def test_pump_brain_exposure_above_iv(numbers):
    # per mg/day, a pump delivers far more to the brain than an IV infusion does (the
    # direct CSF route), more from T10 than from L2
    p = numbers["pump"]
    assert p["pump at T10: brain ECF per mg/day / IV's"] > p["pump at L2: brain ECF per "
                                                             "mg/day / IV's"] > 10.0
