"""Statistical properties of the simulated cohort, within tolerance of the parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.knowledge.catalogue import load_common_diseases, load_lab_table
from disease_pipeline.knowledge.hpo import load_ontology
from disease_pipeline.pipelines.simulate import nodes, rare_cases
from disease_pipeline.pipelines.simulate.symptoms import (
    catalogue_parents,
    everyday_vocabulary,
    less_specific,
    onset_parameters,
    presenting_findings,
    true_frequencies,
)


def test_rare_share_diseases_and_cases_per_disease(cohort):
    cfg, rare, enc = cohort["cfg"], cohort["rare"], cohort["encounters"]
    is_rare = enc["category"] == "RARE"
    assert is_rare.sum() == round(cfg["rare"]["share"] * cfg["n_encounters"])
    assert enc.loc[is_rare, "code"].nunique() == len(rare) == cfg["rare"]["n_diseases"]
    cases = enc[is_rare].groupby(["system", "code"]).size()
    assert cases.between(cfg["rare"]["cases_min"], cfg["rare"]["cases_max"]).all()
    assert cases.max() > cases.min()  # heavy-tailed, not uniform
    # each rare case is a different patient (registry-like cases, patient-grouped splits)
    assert enc.loc[is_rare, "patient"].is_unique
    assert set(rare["database"]) <= {"OMIM", "ORPHA"}
    assert (rare["n_terms"] >= cfg["rare"]["min_present_terms"]).all()


def test_common_diseases_follow_prevalence_with_heavy_imbalance(cohort):
    enc = cohort["encounters"]
    catalogue = load_common_diseases()
    counts = enc[enc["category"] == "COMMON"]["code"].value_counts()
    counts = counts.reindex(catalogue["icd10"], fill_value=0)
    rho = spearmanr(counts.to_numpy(), catalogue["prevalence_per_10k"].to_numpy()).statistic
    assert rho > 0.8
    top = counts.max() / len(enc)
    assert top > 0.05 and counts.min() / len(enc) < 0.002  # heavy imbalance
    assert enc["patient"].value_counts().max() > 1  # patients come back


def test_influenza_peaks_in_winter(cohort):
    enc = cohort["encounters"]
    flu = enc[enc["code"] == "J11.1"]
    winter = flu["month"].isin([12, 1, 2]).sum()
    summer = flu["month"].isin([6, 7, 8]).sum()
    assert winter > 4 * max(summer, 1)


def test_disease_age_and_sex_patterns(cohort):
    enc = cohort["encounters"]
    bronchiolitis = enc.loc[enc["true_code"] == "J21", "age_years"]
    assert len(bronchiolitis) and bronchiolitis.max() <= 3
    copd = enc.loc[enc["true_code"] == "J44.1", "age_years"]
    assert copd.median() > 55
    uti = enc.loc[enc["true_code"] == "N39.0", "sex"]
    assert (uti == "female").mean() > 0.7


def test_modalities_are_missing_as_in_real_care(cohort):
    enc, vitals, labs = cohort["encounters"], cohort["vitals"], cohort["labs"]
    share = enc["modality"].value_counts(normalize=True)
    assert share["symptoms_only"] >= 0.30 and share["vitals_only"] >= 0.10
    assert not enc.loc[enc["encounter_class"] == "IMP", "modality"].eq("symptoms_only").any()
    with_vitals = set(vitals["encounter"])
    with_labs = set(labs["encounter"])
    assert not with_vitals & set(enc.index[enc["modality"] == "symptoms_only"])
    assert not with_labs & set(enc.index[enc["modality"] != "full"])
    # sicker patients are worked up more often
    by_modality = enc.groupby("modality")["acuity"].mean()
    assert by_modality["symptoms_only"] < by_modality["full"]


def test_labs_are_ordered_when_the_presentation_suggests_them(cohort):
    """Missing not at random: troponin is ordered far more often for chest pain."""
    enc, sym, labs = cohort["encounters"], cohort["symptoms"], cohort["labs"]
    full = enc.index[enc["modality"] == "full"]
    chest = set(sym.loc[sym["present"] & (sym["hpo_id"] == "HP:0100749"), "encounter"])
    troponin = set(labs.loc[labs["loinc"] == "10839-9", "encounter"])
    with_pain = [e for e in full if e in chest]
    without = [e for e in full if e not in chest]
    rate = lambda rows: sum(e in troponin for e in rows) / max(len(rows), 1)  # noqa: E731
    # the difference of the two ordering rates, judged by its 95 % lower bound (normal
    # approximation): about 60 chest-pain visits make a fixed margin a coin toss
    p1, p0 = rate(with_pain), rate(without)
    se = np.sqrt(p1 * (1 - p1) / max(len(with_pain), 1) + p0 * (1 - p0) / max(len(without), 1))
    assert len(with_pain) >= 20 and p1 - p0 - 1.96 * se > 0.05, (len(with_pain), p1, p0)


def test_severity_is_rated_from_outcomes_not_thresholded_from_acuity(cohort):
    enc, vitals = cohort["encounters"], cohort["vitals"]
    rank = enc["severity"].map({s: i for i, s in enumerate(SEVERITY_LEVELS)})
    assert set(enc["severity"]) == set(SEVERITY_LEVELS)
    # related to the acuity that drives the findings, but far from a formula of it
    rho = spearmanr(rank, enc["acuity"]).statistic
    assert 0.3 < rho < 0.85, rho
    # rated from outcomes, with rater noise: ICU or death is mostly critical
    severe = enc["icu"] | enc["died"]
    assert (enc.loc[severe, "severity"] == "critical").mean() > 0.8
    assert 0.02 < (rank == 3).mean() < 0.15 and (rank == 0).mean() > 0.3
    hr = vitals[vitals["loinc"] == "8867-4"].join(enc[["acuity", "age_years"]], on="encounter")
    adults = hr[hr["age_years"] > 16]
    assert np.corrcoef(adults["canonical"], adults["acuity"])[0, 1] > 0.2
    lactate = cohort["labs"].query("loinc == '2524-7'").join(enc["acuity"], on="encounter")
    assert np.corrcoef(lactate["canonical"], lactate["acuity"])[0, 1] > 0.15
    by_class = enc.groupby("encounter_class")["acuity"].mean()
    assert by_class["AMB"] < by_class["EMER"] < by_class["IMP"]


def test_label_noise_codes_a_confusable_neighbour(cohort):
    enc = cohort["encounters"]
    common = enc[enc["category"] == "COMMON"]
    wrong = common["code"] != common["true_code"]
    assert 0.05 <= wrong.mean() <= 0.15
    assert (
        enc.loc[enc["category"] == "RARE", "code"]
        == enc.loc[enc["category"] == "RARE", "true_code"]
    ).all()
    # the recorded neighbour shares symptoms with the true disease
    catalogue = load_common_diseases().set_index("icd10")
    terms = {c: {s["hpo"] for s in items} for c, items in catalogue["symptoms"].items()}
    pairs = common.loc[wrong, ["code", "true_code"]].drop_duplicates()
    overlap = [bool(terms[a] & terms[b]) for a, b in pairs.itertuples(index=False)]
    assert np.mean(overlap) > 0.9


def test_symptoms_follow_frequencies_with_noise_omissions_and_exclusions(cohort):
    cfg, enc, sym = cohort["cfg"], cohort["encounters"], cohort["symptoms"]
    table = nodes._catalogue(cfg)
    catalogue = table.set_index("icd10")
    code = enc[enc["category"] == "COMMON"]["code"].value_counts().index[0]
    # the population's frequencies deviate from the catalogue's (an estimate)
    truth = dict(zip(table["icd10"], true_frequencies(cfg, table), strict=True))
    listed = np.concatenate([[s["frequency"] for s in items] for items in table["symptoms"]])
    deviation = np.abs(np.concatenate(list(truth.values())) - listed)
    assert 0.03 < deviation.mean() < 0.15, deviation.mean()
    movable = catalogue_parents(table, load_ontology())
    rows = enc.index[enc["true_code"] == code]  # the disease that drives the findings
    gain, omission = cfg["symptoms"]["acuity_gain"], cfg["symptoms"]["omission_rate"]
    factor = (1 - gain / 2 + gain * enc.loc[rows, "acuity"].mean()) * (1 - omission)
    present = sym[sym["encounter"].isin(rows) & sym["present"]]
    observed = present["hpo_id"].value_counts() / len(rows)
    background = set(cfg["symptoms"]["background_terms"])
    items = catalogue.loc[code, "symptoms"]
    forced = max(items, key=lambda item: item["frequency"])  # recorded when nothing else is
    for item, frequency in zip(items, truth[code], strict=True):
        if item["hpo"] not in background and item is not forced and item["hpo"] not in movable:
            expected = min(frequency * factor, 1.0)
            assert abs(observed.get(item["hpo"], 0.0) - expected) < 0.08, item
    assert (sym["origin"] == "background").any() and (~sym["present"]).any()
    assert not sym.duplicated(["encounter", "hpo_id"]).any()
    # explicitly absent terms are never also present in the same encounter
    assert sym.groupby("encounter")["hpo_id"].apply(lambda s: s.is_unique).all()
    # rare cases show terms of their own disease annotations
    rare_rows = enc.index[enc["category"] == "RARE"]
    assert sym[sym["encounter"].isin(rare_rows)].groupby("encounter").size().median() >= 4


def test_snomed_codings_are_real_xrefs_of_the_hpo_term(cohort):
    sym = cohort["symptoms"]
    share = (sym["system"] == "SNOMEDCT").mean()
    site = cohort["encounters"]["site"].to_numpy()[sym["encounter"].to_numpy()]
    habits = [spec["snomed_share"] for spec in cohort["cfg"]["sites"]["specs"].values()]
    assert abs(share - np.asarray(habits)[site].mean()) < 0.03
    # coding habits differ between sites
    by_site = (sym["system"] == "SNOMEDCT").groupby(site).mean()
    assert by_site.max() - by_site.min() > 0.15
    xref = load_ontology().snomed_to_hpo
    snomed = sym[sym["system"] == "SNOMEDCT"]
    assert (snomed["code"].map(xref) == snomed["hpo_id"]).all()
    assert (
        sym.loc[sym["system"] == "HPO", "code"] == sym.loc[sym["system"] == "HPO", "hpo_id"]
    ).all()


def test_measurements_stay_plausible_and_use_unit_variants(cohort):
    table = load_lab_table().set_index("loinc")
    for frame in (cohort["vitals"], cohort["labs"]):
        bounds = table.loc[frame["loinc"], "plausible"]
        low = np.array([b["min"] for b in bounds])
        high = np.array([b["max"] for b in bounds])
        assert (
            (frame["canonical"].to_numpy() >= low) & (frame["canonical"].to_numpy() <= high)
        ).all()
    glucose = cohort["labs"].query("loinc == '2345-7'")["unit"].value_counts(normalize=True)
    assert {"mg/dL", "mmol/L"} <= set(glucose.index)
    alt = (
        1
        - (
            cohort["labs"]["unit"]
            == table.loc[cohort["labs"]["loinc"], "canonical_unit"].to_numpy()
        ).mean()
    )
    assert 0.15 < alt < 0.45


def test_comorbidities_rise_with_age(cohort):
    enc, com = cohort["encounters"], cohort["comorbidities"]
    hypertension = pd.Series(False, index=enc.index)
    hypertension[com.loc[com["code"] == "I10", "encounter"]] = True
    old = hypertension[enc["age_years"] > 70].mean()
    young = hypertension[enc["age_years"] < 30].mean()
    assert old > 3 * young and old > 0.3


def _onsets(cohort) -> pd.DataFrame:
    """Recorded onsets (days) of present symptoms with their encounter's code and category."""
    sym, enc = cohort["symptoms"], cohort["encounters"]
    rows = sym.loc[
        (sym["onset_days"] >= 0) & (sym["origin"] == "disease"), ["encounter", "onset_days"]
    ]
    return rows.join(
        enc[["true_code", "category"]].rename(columns={"true_code": "code"}), on="encounter"
    )


def test_chronic_catalogue_diseases_have_long_onsets(cohort):
    onsets = _onsets(cohort)
    common = onsets[onsets["category"] == "COMMON"]
    median = common.groupby("code")["onset_days"].median()
    assert median["I10"] > 20 * median["J06.9"] and median["I10"] > 180
    assert median["E11.9"] > 180 and median["J11.1"] <= 7
    # every common disease with enough onsets follows its catalogue median (or the default)
    default = cohort["cfg"]["common"]["onset_days_median"]
    expected = load_common_diseases().set_index("icd10")["onset_days"]
    counts = common.groupby("code").size()
    for code in counts.index[counts >= 40]:
        block = expected[code]
        want = block["median"] if block else default
        assert want / 2 - 1 <= median[code] <= want * 2, (code, median[code], want)
    # many common encounters are chronic too (the onset-alone ceiling: test_shortcuts.py)
    longest = onsets.groupby("encounter").agg(
        longest=("onset_days", "max"), category=("category", "first")
    )
    chronic = (longest["longest"] > 90).groupby(longest["category"]).mean()
    assert chronic["COMMON"] > 0.3


def test_rare_encounters_are_often_brought_in_by_a_common_complaint(cohort):
    cfg, enc, sym = cohort["cfg"], cohort["encounters"], cohort["symptoms"]
    rare_rows = enc.index[enc["category"] == "RARE"]
    complaint = sym[sym["encounter"].isin(rare_rows) & (sym["origin"] == "complaint")]
    # every visit before the diagnosis has one, and rare.acute_share of the others
    early = enc.index[enc["prediagnostic"]]
    assert early.isin(complaint["encounter"]).all()
    later = rare_rows.difference(early)
    share = complaint["encounter"].isin(later).groupby(complaint["encounter"]).first().sum()
    assert abs(share / len(later) - cfg["rare"]["acute_share"]) < 0.12, share / len(later)
    # the illness's findings began when that illness did: its catalogue onset, not an
    # acute default for every illness (a chronic illness's findings are old)
    catalogue = nodes._catalogue(cfg)
    chronic_codes = {
        i for i, b in enumerate(catalogue["onset_days"]) if isinstance(b, dict) and b["median"] > 89
    }
    known = complaint[complaint["onset_days"] >= 0]
    illness_of = enc.loc[known["encounter"], "complaint"].to_numpy()
    chronic = np.isin(illness_of, list(chronic_codes))
    assert chronic.sum() >= 5, chronic.sum()
    acute = known["onset_days"][~chronic].median()
    assert acute <= 14 and known["onset_days"][chronic].median() > 5 * max(acute, 1)
    # the disease's own terms keep a chronic onset (from the HPO onset annotation)
    own = sym[sym["encounter"].isin(rare_rows) & (sym["origin"] == "disease")]
    assert own.loc[own["onset_days"] >= 0, "onset_days"].median() > 180
    median, _ = onset_parameters(cfg, enc, nodes._catalogue(cfg), cohort["rare"])
    assert len(set(np.round(median[enc["category"] == "RARE"]))) > 10  # per-case ages
    # the visit is triaged for the illness that brought it in: its acuity is the
    # illness's, not the rare disease's (the same complaint rows in the encounters)
    brought = enc.loc[rare_rows, "complaint"] >= 0
    assert set(complaint["encounter"]) == set(brought.index[brought])
    catalogue = nodes._catalogue(cfg)
    base = catalogue["base_acuity"].to_numpy(float)[enc.loc[brought.index[brought], "complaint"]]
    bonus = cfg["rare"]["complaint_acuity_bonus"]
    acuity = enc.loc[brought.index[brought], "acuity"].to_numpy()
    assert abs(acuity.mean() - (base.mean() + bonus)) < 0.08
    assert (enc.loc[~enc.index.isin(rare_rows), "complaint"] == -1).all()


def test_onsets_are_heaped_and_often_unknown(cohort):
    sym = cohort["symptoms"]
    present = sym[sym["present"]]
    unknown = (present["onset_days"] < 0).mean()
    assert 0.30 <= unknown <= 0.40
    known = present.loc[present["onset_days"] >= 0, "onset_days"]
    preferred = set(cohort["cfg"]["symptoms"]["onset_heaping"]["days"])
    assert known.isin(preferred).mean() > 0.6


def test_rare_encounters_record_as_many_findings_as_a_published_case(cohort):
    """A rare encounter records what a registry case report records (present terms:
    median 7, interquartile range 4-12 over the shared phenopackets): the case's findings
    (disease terms and the presenting complaint's) within rare.min/max_present_symptoms,
    and the background every encounter carries on top, not twice a common visit."""
    cfg, enc, sym = cohort["cfg"], cohort["encounters"], cohort["symptoms"]
    # the diagnostic visits (those before the diagnosis: the next test)
    rare_rows = enc.index[(enc["category"] == "RARE") & ~enc["prediagnostic"]]
    present = sym[sym["present"]]
    own = sym[sym["encounter"].isin(rare_rows) & (sym["origin"] == "disease")]
    case = present[present["encounter"].isin(rare_rows)]
    case = case[case["origin"].isin(["disease", "complaint"])].groupby("encounter").size()
    low, high = cfg["rare"]["min_present_symptoms"], cfg["rare"]["max_present_symptoms"]
    assert case.min() >= low and case.quantile(0.95) <= high, case.describe()
    assert own.groupby("encounter").size().min() >= cfg["rare"]["min_disease_terms"]
    total = present.groupby("encounter").size().reindex(enc.index, fill_value=0)
    is_rare = enc.index.isin(rare_rows)
    assert 5 <= total[is_rare].median() <= 9, total[is_rare].describe()
    assert total[is_rare].median() <= total[~is_rare].median() + 3
    # a share of the terms is recorded less precisely than annotated (parent or sibling)
    annotated = set(zip(cohort["terms"]["disease_id"], cohort["terms"]["hpo_id"], strict=True))
    disease_id = cohort["rare"]["disease_id"].to_numpy()[enc.loc[own["encounter"], "disease"]]
    exact = [(d, t) in annotated for d, t in zip(disease_id, own["hpo_id"], strict=True)]
    assert 0.15 <= 1 - np.mean(exact) <= 0.45
    # unrelated findings (the background every encounter carries): 1-3 in most cases
    unrelated = ~sym["origin"].isin(["disease", "complaint"])
    others = sym[sym["encounter"].isin(rare_rows) & sym["present"] & unrelated]
    assert others["encounter"].nunique() >= 0.6 * len(rare_rows)
    assert 1.0 <= others.groupby("encounter").size().reindex(rare_rows, fill_value=0).mean() <= 3.5


def test_visits_before_the_diagnosis_record_few_findings_in_everyday_words(cohort):
    """The diagnostic odyssey: rare.prediagnostic_share of the rare visits come before the
    diagnosis. An intercurrent illness brings the patient in (previous test); 1 to
    rare.prediagnostic_max_terms of the disease's findings are recorded, in the words of
    everyday practice where HPO has such an ancestor."""
    cfg, enc, sym = cohort["cfg"], cohort["encounters"], cohort["symptoms"]
    rare = enc["category"] == "RARE"
    assert not enc.loc[~rare, "prediagnostic"].any()
    share = enc.loc[rare, "prediagnostic"].mean()
    assert abs(share - cfg["rare"]["prediagnostic_share"]) < 0.12, share
    of_rare = sym["encounter"].isin(enc.index[rare])
    own = sym[sym["present"] & (sym["origin"] == "disease") & of_rare]
    early = own["encounter"].isin(enc.index[enc["prediagnostic"]])
    per_visit = own[early].groupby("encounter").size()
    assert per_visit.max() <= cfg["rare"]["prediagnostic_max_terms"], per_visit.describe()
    assert (per_visit == 1).any() and (per_visit == cfg["rare"]["prediagnostic_max_terms"]).any()
    # each such finding is its own nearest everyday word (it has no more general one),
    # while diagnostic visits do record specific terms under an everyday ancestor
    vocabulary = everyday_vocabulary(cfg, nodes._catalogue(cfg))
    ontology = load_ontology()
    plain = own["hpo_id"].map(lambda t: rare_cases.in_vocabulary(t, ontology, vocabulary) == t)
    assert plain[early].all()
    assert (~plain[~early]).sum() >= 10, (~plain[~early]).sum()


def test_everyday_words_are_the_nearest_ancestor_in_the_vocabulary():
    ontology = load_ontology()
    # focal-onset seizure -> seizure; a term with no ancestor in the vocabulary stays
    vocabulary = frozenset({"HP:0001250", "HP:0002315"})
    assert rare_cases.in_vocabulary("HP:0007359", ontology, vocabulary) == "HP:0001250"
    assert rare_cases.in_vocabulary("HP:0001250", ontology, vocabulary) == "HP:0001250"
    assert rare_cases.in_vocabulary("HP:0000252", ontology, vocabulary) == "HP:0000252"


def test_common_findings_are_sometimes_recorded_less_specifically(cohort):
    """Routine records use the plainer catalogue word for a specific finding (productive
    cough -> cough) in about symptoms.less_specific_share of the findings that have one."""
    ontology = load_ontology()
    catalogue = nodes._catalogue(cohort["cfg"])
    parents = catalogue_parents(catalogue, ontology)
    assert parents["HP:0031245"] == ("HP:0012735",)  # productive cough -> cough
    terms = np.array(["HP:0031245"] * 4000 + ["HP:0012735"] * 1000, dtype=object)
    moved = less_specific(np.random.default_rng(0), terms, parents, 0.35)
    share = np.mean(moved[:4000] == "HP:0012735")
    assert abs(share - 0.35) < 0.03
    assert (moved[4000:] == "HP:0012735").all()  # no parent in the catalogue: unchanged
    # in the cohort: some of a common disease's findings are recorded with a word its own
    # catalogue list does not have (the parent), and only such parents
    enc, sym = cohort["encounters"], cohort["symptoms"]
    rows = sym[sym["present"] & (sym["origin"] == "disease")]
    rows = rows[(enc.loc[rows["encounter"], "category"] == "COMMON").to_numpy()]
    listed = {d: {s["hpo"] for s in items} for d, items in enumerate(catalogue["symptoms"])}
    disease = enc.loc[rows["encounter"], "disease"].to_numpy()
    foreign = np.array([t not in listed[d] for d, t in zip(disease, rows["hpo_id"], strict=True)])
    assert 0.005 < foreign.mean() < 0.1, foreign.mean()
    every_parent = {p for options in parents.values() for p in options}
    assert set(rows["hpo_id"].to_numpy()[foreign]) <= every_parent


def test_incidental_findings_began_at_any_point_of_life(cohort):
    """An incidental finding of lifetime prevalence (myopia, hearing loss, short stature)
    started at a uniform point of the patient's life: a 60-year-old's began decades ago
    as often as last year, like a rare disease's lifelong findings."""
    enc, sym = cohort["encounters"], cohort["symptoms"]
    incidental = sym[(sym["origin"] == "incidental") & (sym["onset_days"] >= 0)]
    age_days = enc.loc[incidental["encounter"], "age_years"].to_numpy() * 365.25
    fraction = incidental["onset_days"].to_numpy() / np.maximum(age_days, 1.0)
    assert 0.35 <= np.median(fraction) <= 0.65, np.median(fraction)
    adults = age_days >= 40 * 365.25
    assert np.median(incidental["onset_days"].to_numpy()[adults]) > 5 * 365.25


def test_rare_visits_without_an_illness_are_often_prompted_by_a_new_finding(cohort):
    """A rare visit with no intercurrent illness is, in ``rare.presenting_share`` of
    cases, prompted by one disease finding that is new or got worse (recent onset);
    the others are referrals on long-standing findings only."""
    cfg, enc, sym = cohort["cfg"], cohort["encounters"], cohort["symptoms"]
    flagged = presenting_findings(cfg, enc, sym)
    rows = sym[flagged]
    assert rows["encounter"].is_unique  # one prompting finding per visit
    assert (rows["origin"] == "disease").all() and rows["present"].all()
    visits = enc.loc[rows["encounter"]]
    assert (visits["category"] == "RARE").all() and (visits["complaint"] < 0).all()
    quiet = enc.index[(enc["category"] == "RARE") & (enc["complaint"] < 0)]
    share = len(rows) / len(quiet)
    assert abs(share - cfg["rare"]["presenting_share"]) < 0.12, share
    # in the recorded onsets: recent disease findings in about that share of such visits
    own = sym[
        sym["encounter"].isin(quiet) & (sym["origin"] == "disease") & (sym["onset_days"] >= 0)
    ]
    recent = (
        (own["onset_days"] <= 90).groupby(own["encounter"]).any().reindex(quiet, fill_value=False)
    )
    expected = cfg["rare"]["presenting_share"] * cfg["symptoms"]["onset_share"]
    assert expected - 0.15 < recent.mean() < expected + 0.2, recent.mean()
