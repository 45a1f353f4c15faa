"""Validation against published human data: study designs, scoring, joint fit, figures.

``csfmodel/data/calibration.csv`` holds published observations of morphine in
humans (lumbar CSF after intrathecal boluses, CSF half-lives and clearance,
plasma after intrathecal, intravenous and oral morphine; lumbar : cisternal CSF
and CSF : plasma under chronic infusion, Moulin 1986; CSF at T10 after isobaric
and hyperbaric lumbar boluses, Caute 1988) and of a hydrophilic tracer under a
72 h lumbar infusion. Each row is reproduced here by running the
design of the study behind it -- dose, site, injected volume, sampling site and
sampling times as the study did them -- through :func:`csfmodel.simulate`, and
computing the measure the way the study computed it (log-linear regression for
a terminal half-life, dose/AUC for a clearance, the maximum over the sampled
times for a Cmax).

A row passes when the model is within a factor of two of the observed value
(``1/2 <= model/observed <= 2``); an ``upper_bound`` row passes when the model
stays below twice the bound at the times the study sampled. The default
parameters are not tuned per row: one parameter set is judged on every row at
once. Rows the model is known not to reproduce are listed with the reason in
:data:`KNOWN_DISAGREEMENTS`; they are printed and marked but do not fail the
validation (:func:`failures`).

The calibrated parameters (:data:`FIT_PARAMETERS`) are fitted to all rows at
once by :func:`fit` -- weighted least squares on ``log(model/observed)``, each row
weighted by its own spread combined with a between-study error
(:func:`row_sigma`) -- which reports estimates, Wald intervals from the Jacobian,
correlations and each row's share of the information about each parameter
(``csfmodel validate --refit``).

Where a paper's abstract leaves the design open, the assumption is written in
the design below (and printed by ``csfmodel validate --designs``):

* injected volume 1 mL at 4 mL/min when the row gives none;
* lumbar CSF sampled at the level of the injection;
* Nordberg 1984: CSF and plasma sampled at 1, 2, 3, 4, 6, 8, 12 and 24 h (the
  abstract reports concentrations from 1 h on); terminal half-life from the
  samples at 2 h and later; clearance = dose / AUC(0-inf) per kg of the 70 kg
  default body weight;
* Sjostrom 1987: "frequent sampling for 6 h", taken as 5, 10, 15, 20, 30, 45,
  60, 90, 120, 150, 180, 240, 300 and 360 min; the half-life "after a fast
  ~15 min phase" from the samples at 30 min and later;
* Kroin 1993: 111In-DTPA (``dtpa`` preset) infused for 72 h with the catheter
  tip at L2, CSF concentration at mid-T2 over mid-T12;
* Stuart-Harris 2000: 10 mg IV bolus; terminal half-life from plasma samples
  at 2-24 h; clearance = dose / AUC(0-inf) with the model curve followed to 72 h
  (the quantity a study's extrapolated AUC estimates);
* Westerling 1993: oral solution vs IV, AUC(0-inf) ratio per mg;
* MS Contin 30 mg: one controlled-release tablet, Cmax and Tmax of plasma;
* Moulin 1986: tips at L2 and T10 (one patient each); plateau of a constant
  infusion (:func:`csfmodel.steady_state.plateau`); "lumbar CSF" sampled by a
  lumbar puncture at L3-L4 (:data:`MOULIN_LUMBAR_SITE`), cisternal CSF = the
  cisterna compartment; the bolus half-life from a 1 mg, 1 mL catheter bolus,
  CSF at L3-L4 at 1-8 h; two-tip quantities as geometric means;
* Caute 1988: 2 mg at L5-S1 in 2 mL (:data:`CAUTE_VOLUME_ML`), CSF at mid-T10 at
  :data:`CAUTE_SAMPLES_H`; the hyperbaric solution settled at S1 without
  injection-driven spread (:data:`CAUTE_HYPERBARIC_SITE`).

:func:`design_sensitivity` re-runs the affected rows under the alternatives in
:data:`DESIGN_ALTERNATIVES`.

Private modules, one concept each: ``_rows.py`` (the table and scoring), ``_measures.py``
(simulated arms; half-life, AUC, peak), ``_designs.py`` (the study designs and their
assumptions), ``_runner.py`` (:func:`run_validation`, :func:`format_table`), ``_fit.py``
(the joint calibration), ``_sensitivity.py``, ``_figures.py``, ``_predictions.py``,
``_user_rows.py`` (rows whose design is given in their columns: :func:`run_rows`).
"""

from ._designs import CAUTE_HYPERBARIC_SITE as CAUTE_HYPERBARIC_SITE
from ._designs import CAUTE_RATE_ML_MIN as CAUTE_RATE_ML_MIN
from ._designs import CAUTE_SAMPLES_H as CAUTE_SAMPLES_H
from ._designs import CAUTE_VOLUME_ML as CAUTE_VOLUME_ML
from ._designs import DESIGNS as DESIGNS
from ._designs import MOULIN_BOLUS_VOLUME_ML as MOULIN_BOLUS_VOLUME_ML
from ._designs import MOULIN_LUMBAR_SITE as MOULIN_LUMBAR_SITE
from ._designs import MOULIN_SAMPLES_H as MOULIN_SAMPLES_H
from ._designs import MOULIN_TIPS as MOULIN_TIPS
from ._designs import NORDBERG_SAMPLES_H as NORDBERG_SAMPLES_H
from ._designs import SJOSTROM_SAMPLES_MIN as SJOSTROM_SAMPLES_MIN
from ._figures import plot_predictions as plot_predictions
from ._figures import plot_validation as plot_validation
from ._fit import DEFAULT_FIT as DEFAULT_FIT
from ._fit import FIT_PARAMETERS as FIT_PARAMETERS
from ._fit import SIGMA_BETWEEN as SIGMA_BETWEEN
from ._fit import FitParameter as FitParameter
from ._fit import FitResult as FitResult
from ._fit import _overrides as _overrides  # tests
from ._fit import fit as fit
from ._fit import fitted_rows as fitted_rows
from ._fit import format_fit as format_fit
from ._fit import residual as residual
from ._fit import row_sigma as row_sigma
from ._measures import auc_inf as auc_inf
from ._measures import peak as peak
from ._measures import terminal_half_life as terminal_half_life
from ._predictions import format_predictions as format_predictions
from ._predictions import predictions as predictions
from ._rows import CITATIONS as CITATIONS
from ._rows import FACTOR as FACTOR
from ._rows import KNOWN_DISAGREEMENTS as KNOWN_DISAGREEMENTS
from ._rows import NOT_FITTED as NOT_FITTED
from ._rows import NOT_MODELLED as NOT_MODELLED
from ._rows import Row as Row
from ._rows import RowResult as RowResult
from ._rows import failures as failures
from ._rows import load_rows as load_rows
from ._rows import score as score
from ._runner import format_table as format_table
from ._runner import run_validation as run_validation
from ._sensitivity import DESIGN_ALTERNATIVES as DESIGN_ALTERNATIVES
from ._sensitivity import design_sensitivity as design_sensitivity
from ._sensitivity import format_design_sensitivity as format_design_sensitivity
from ._sensitivity import format_sensitivity as format_sensitivity
from ._sensitivity import sensitivity as sensitivity
from ._user_rows import UserDesign as UserDesign
from ._user_rows import read_rows as read_rows
from ._user_rows import run_rows as run_rows
from ._user_rows import user_design as user_design

__all__ = [
    "CITATIONS",
    "FACTOR",
    "KNOWN_DISAGREEMENTS",
    "NOT_FITTED",
    "NOT_MODELLED",
    "Row",
    "RowResult",
    "failures",
    "load_rows",
    "score",
    "auc_inf",
    "peak",
    "terminal_half_life",
    "CAUTE_HYPERBARIC_SITE",
    "CAUTE_RATE_ML_MIN",
    "CAUTE_SAMPLES_H",
    "CAUTE_VOLUME_ML",
    "DESIGNS",
    "MOULIN_BOLUS_VOLUME_ML",
    "MOULIN_LUMBAR_SITE",
    "MOULIN_SAMPLES_H",
    "MOULIN_TIPS",
    "NORDBERG_SAMPLES_H",
    "SJOSTROM_SAMPLES_MIN",
    "format_table",
    "run_validation",
    "DEFAULT_FIT",
    "FIT_PARAMETERS",
    "SIGMA_BETWEEN",
    "FitParameter",
    "FitResult",
    "fit",
    "fitted_rows",
    "format_fit",
    "residual",
    "row_sigma",
    "DESIGN_ALTERNATIVES",
    "design_sensitivity",
    "format_design_sensitivity",
    "format_sensitivity",
    "sensitivity",
    "plot_predictions",
    "plot_validation",
    "format_predictions",
    "predictions",
    "UserDesign",
    "read_rows",
    "run_rows",
    "user_design",
]
