"""The pump in a patient's life: reservoir and refills, the first pump rate, rescue doses.

* :func:`reservoir` (``_pump.py``): the reservoir of a scenario's ``[pump]`` over months,
  the alarm and refill dates, days of therapy per fill, the volume expected back at a
  refill, settings outside published practice; :func:`attach_reservoir` adds
  ``reservoir_volume(time)`` to simulation results.
* :func:`start_rate` (``_start_rate.py``): a first pump rate at a catheter tip from a
  trial (bolus or infusion) that gave relief, or from the patient's opioids (oral
  morphine equivalents, ``_conversion.py``), beside the published clinical rules.
* :func:`rescue_onset` (``_rescue.py``): time to onset and to peak of a pump bolus, an
  oral immediate-release dose and an IV bolus for breakthrough pain.
* ``_figures.py``: the figures of each (``.plot()``).

``csfmodel pump reservoir | start-rate | rescue`` runs them from the command line.
"""

from ._conversion import CLINICAL_RULES as CLINICAL_RULES
from ._conversion import CONVERSIONS as CONVERSIONS
from ._conversion import METHADONE_BANDS as METHADONE_BANDS
from ._conversion import ClinicalRule as ClinicalRule
from ._conversion import Conversion as Conversion
from ._conversion import OpioidDose as OpioidDose
from ._conversion import oral_morphine_equivalents as oral_morphine_equivalents
from ._pump import FillRow as FillRow
from ._pump import ReservoirReport as ReservoirReport
from ._pump import attach_reservoir as attach_reservoir
from ._pump import reservoir as reservoir
from ._rescue import RescueComparison as RescueComparison
from ._rescue import RescueResult as RescueResult
from ._rescue import rescue_onset as rescue_onset
from ._start_rate import Candidate as Candidate
from ._start_rate import StartRate as StartRate
from ._start_rate import start_rate as start_rate

__all__ = ["reservoir", "attach_reservoir", "ReservoirReport", "FillRow",
           "start_rate", "StartRate", "Candidate",
           "rescue_onset", "RescueComparison", "RescueResult",
           "oral_morphine_equivalents", "OpioidDose", "Conversion", "CONVERSIONS",
           "METHADONE_BANDS", "ClinicalRule", "CLINICAL_RULES"]
