"""DiseasePredictor on patient records: differential, intervals, severity, explanation,
record validation and the rare-model plug."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from disease_pipeline.predictor import DiseasePredictor
from disease_pipeline.predictor.bundle import NO_CONTRIBUTION_NOTE, RARE_SLOT_CODE
from disease_pipeline.records import Measurement, PatientRecord, Symptom

LEVELS = ["low", "moderate", "high", "critical"]


def febrile_record(**changes) -> PatientRecord:
    record = PatientRecord(
        patient_id="pseudo-1",
        encounter_id="enc-1",
        age=54,
        sex="female",
        symptoms=[
            Symptom(code="HP:0001945", severity=2, onset_days=3),
            Symptom(code="49727002", system="SNOMEDCT"),  # cough
            Symptom(code="HP:0002315", present=False),
        ],
        vitals=[
            Measurement(loinc="8867-4", value=104, unit="/min"),
            Measurement(loinc="9279-1", value=24, unit="/min"),
            Measurement(loinc="8310-5", value=38.6, unit="Cel"),
        ],
        labs=[Measurement(loinc="2345-7", value=112, unit="mg/dL")],
        comorbidities=["i10"],
    )
    return record.model_copy(update=changes)


def test_predict_records_returns_a_full_prediction(predictor):
    assert isinstance(predictor, DiseasePredictor)
    [output] = predictor.predict_records([febrile_record()], top_k=3)
    assert output["encounter_id"] == "enc-1"
    differential = output["differential"]
    assert len(differential) == 3
    probabilities = [d["probability"] for d in differential]
    assert probabilities == sorted(probabilities, reverse=True)
    for item in differential:
        assert set(item) == {"code", "name", "category", "probability", "interval", "phenotypes"}
        assert item["phenotypes"] is None  # no rare model: nothing to match phenotypes with
        low, high = item["interval"]
        assert 0 <= low <= item["probability"] <= high <= 1
    assert set(output["severity"]["probabilities"]) == set(LEVELS)
    assert output["severity"]["level"] in LEVELS
    assert abs(sum(output["severity"]["probabilities"].values()) - 1) < 1e-9
    assert 0 < output["p_rare"] < 1


def test_probabilities_sum_to_one_over_the_differential(predictor, predictor_tables):
    outputs = predictor.predict_tables(predictor_tables, top_k=1000, explain=False)
    assert len(outputs) == len(predictor_tables["encounters"])
    for output in outputs:
        codes = [d["code"] for d in output["differential"]]
        assert len(codes) == len(predictor.common_classes) + 1
        assert RARE_SLOT_CODE in codes
        assert abs(sum(d["probability"] for d in output["differential"]) - 1) < 1e-9
        rare = next(d for d in output["differential"] if d["code"] == RARE_SLOT_CODE)
        assert rare["probability"] == pytest.approx(output["p_rare"])


def test_explanation_speaks_clinical_words(predictor):
    [output] = predictor.predict_records([febrile_record()], top_k=5)
    explanation = output["explanation"]
    top = output["differential"][0]
    assert explanation["target"] == f"{top['name']} ({top['code']})"
    assert explanation["features"], "no contributing feature"
    for item in explanation["features"]:
        assert item["direction"] in {"increases", "decreases"}
        assert not item["label"].startswith(("hpo_", "vitals_", "labs_"))
    labels = " ".join(predictor.feature_labels.values())
    assert "Fever" in labels


def test_units_are_converted_before_features(predictor):
    mg = predictor.predict_records([febrile_record()], explain=False)[0]
    mmol = febrile_record(labs=[Measurement(loinc="2345-7", value=112 / 18.016, unit="mmol/L")])
    converted = predictor.predict_records([mmol], explain=False)[0]
    assert converted["p_rare"] == pytest.approx(mg["p_rare"])
    assert [d["code"] for d in converted["differential"]] == [d["code"] for d in mg["differential"]]


def test_snomed_symptoms_equal_their_hpo_term(predictor):
    snomed = febrile_record()
    hpo = febrile_record(
        symptoms=[
            Symptom(code="HP:0001945", severity=2, onset_days=3),
            Symptom(code="HP:0012735"),
            Symptom(code="HP:0002315", present=False),
        ]
    )
    a, b = predictor.predict_records([snomed, hpo.model_copy(update={"encounter_id": "enc-2"})])
    assert a["differential"] == b["differential"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"labs": [Measurement(loinc="2345-7", value=5, unit="furlong")]},
            r"records\[0\]\.labs\[0\]\.unit",
        ),
        (
            {"vitals": [Measurement(loinc="0000-0", value=5, unit="/min")]},
            r"records\[0\]\.vitals\[0\]\.loinc",
        ),
        ({"symptoms": [Symptom(code="HP:99999")]}, r"records\[0\]\.symptoms\[0\]\.code"),
        (
            {"symptoms": [Symptom(code="1", system="SNOMEDCT")]},
            r"records\[0\]\.symptoms\[0\]\.code",
        ),
        ({"comorbidities": ["hypertension"]}, r"records\[0\]\.comorbidities\[0\]"),
    ],
)
def test_bad_input_names_the_field(predictor, changes, field):
    with pytest.raises(ValueError, match=field):
        predictor.predict_records([febrile_record(**changes)])


def test_an_unknown_hpo_id_is_ignored_and_a_malformed_one_refused(predictor):
    known = febrile_record()
    unknown = febrile_record(symptoms=[*known.symptoms, Symptom(code="HP:9999998")])
    with_unknown = predictor.predict_records([unknown])[0]["differential"]
    assert [d["code"] for d in with_unknown] == [
        d["code"] for d in predictor.predict_records([known])[0]["differential"]
    ]
    malformed = febrile_record(symptoms=[Symptom(code="fever")])
    with pytest.raises(ValueError, match=r"'fever' is not an HPO term id"):
        predictor.predict_records([malformed])


def test_an_implausible_encounter_date_is_refused_by_name(predictor):
    record = febrile_record().model_dump(mode="json")
    with pytest.raises(ValueError, match=r"records\[0\]\.encounter_date: 0001-01-01"):
        predictor.predict_records([record | {"encounter_date": "0001-01-01T00:00:00"}])
    with pytest.raises(ValueError, match=r"records\[0\]\.encounter_date"):
        predictor.predict_records([record | {"encounter_date": "9999-12-31T00:00:00"}])
    aware = record | {"encounter_date": "2024-03-01T10:00:00+02:00"}
    naive = record | {"encounter_id": "enc-2"}  # no date: now, without time zone
    assert len(predictor.predict_records([aware, naive])) == 2


def test_dict_records_and_duplicate_ids(predictor):
    record = febrile_record().model_dump()
    assert len(predictor.predict_records([record], explain=False)) == 1
    with pytest.raises(ValueError, match=r"records\[1\]\.encounter_id"):
        predictor.predict_records([record, record])
    with pytest.raises(ValueError, match=r"records\[0\]"):
        predictor.predict_records([{"age": 300}])


class FixedRanker:
    """A rare model stand-in: three candidates with scores 3, 1, 0."""

    disease_ids = ["OMIM:154700", "ORPHA:558", "OMIM:219700"]

    def rank(self, tables, features):
        names = ["Marfan syndrome", "Marfan syndrome (Orphanet)", "Cystic fibrosis"]
        return [
            list(zip(self.disease_ids, names, [3.0, 1.0, 0.0], strict=True))
            for _ in range(len(features))
        ]


class ExplainingRanker(FixedRanker):
    """FixedRanker whose candidates explain themselves (records what it was asked)."""

    def __init__(self):
        self.asked = []

    def explain_candidates(self, tables, features, disease_ids):
        self.asked.append((list(features.index), disease_ids))
        return [[{"matched": [code], "known_cases": 0} for code in codes] for codes in disease_ids]


def test_listed_rare_candidates_carry_their_phenotype_explanation(predictor):
    """Each rare candidate of the rare model shown in the differential gets the rare
    model's explanation (matched and missing phenotypes); common entries and the rare
    slot get None; candidates cut by top_k are not explained."""
    bundle = pickle.loads(pickle.dumps(predictor))
    bundle.rare_model = ExplainingRanker()
    bundle.rare_rank_floor = 0.0  # every row may list named rare candidates
    [output] = bundle.predict_records([febrile_record()], top_k=1000)
    for entry in output["differential"]:
        if entry["category"] == "RARE":
            assert entry["phenotypes"] == {"matched": [entry["code"]], "known_cases": 0}
        else:
            assert entry["phenotypes"] is None
    listed = [d["code"] for d in output["differential"] if d["category"] == "RARE"]
    assert bundle.rare_model.asked == [(["enc-1"], [listed])]
    [short] = bundle.predict_records([febrile_record()], top_k=2)
    shown = [d["code"] for d in short["differential"] if d["category"] == "RARE"]
    assert bundle.rare_model.asked[1:] == ([(["enc-1"], [shown])] if shown else [])
    [bare] = bundle.predict_records([febrile_record()], top_k=1000, explain=False)
    assert all("phenotypes" not in d for d in bare["differential"])


def test_rare_model_splits_p_rare_among_its_candidates(predictor):
    bundle = pickle.loads(pickle.dumps(predictor))
    bundle.rare_model = FixedRanker()
    bundle.rare_rank_floor = 0.0  # every row may list named rare candidates
    [output] = bundle.predict_records([febrile_record()], top_k=1000, explain=False)
    rare = {d["code"]: d for d in output["differential"] if d["category"] == "RARE"}
    assert set(rare) == set(FixedRanker.disease_ids)
    assert rare["OMIM:154700"]["probability"] == pytest.approx(0.75 * output["p_rare"])
    assert abs(sum(d["probability"] for d in output["differential"]) - 1) < 1e-9
    assert set(bundle.supported_diseases().values()) == {"COMMON", "RARE"}


def test_below_the_rare_floor_the_rare_slot_is_listed(predictor):
    """Under ``rare_rank_floor`` the rare model is not asked while its candidates would
    compete with common diseases for the list: only the unspecified rare slot may be
    listed. A list longer than the common diseases names them whatever the floor."""
    bundle = pickle.loads(pickle.dumps(predictor))
    bundle.rare_model = FixedRanker()
    n_common = len(bundle.common_classes)
    [output] = bundle.predict_records([febrile_record()], top_k=n_common, explain=False)
    bundle.rare_rank_floor = output["p_rare"] + 1e-6
    [floored] = bundle.predict_records([febrile_record()], top_k=n_common, explain=False)
    rare = [d["code"] for d in floored["differential"] if d["category"] == "RARE"]
    assert set(rare) <= {RARE_SLOT_CODE}
    [full] = bundle.predict_records([febrile_record()], top_k=1000, explain=False)
    named = [d for d in full["differential"] if d["category"] == "RARE"]
    assert named and RARE_SLOT_CODE not in {d["code"] for d in named}
    assert sum(d["probability"] for d in named) == pytest.approx(full["p_rare"])


def test_the_bundle_pickles_and_predicts_the_same(predictor):
    """The predictor is stored pickled (MLflow artifact, BentoML model): the copy must
    give the same answer, explanation included."""
    bundle = pickle.loads(pickle.dumps(predictor))
    record = febrile_record()
    assert bundle.predict_records([record]) == predictor.predict_records([record])


def test_per_class_contributions_equal_the_full_treeshap(predictor, predictor_tables):
    """Explanations use one booster per class (a K-th of the cost); their TreeSHAP
    values must be exactly those of the multiclass model for that class, and must
    survive pickling (the per-class boosters are rebuilt, not stored)."""
    X = predictor.feature_builder.transform(predictor_tables).head(40)
    for model in (predictor.common_model, predictor.gate_model):
        targets = np.arange(len(X)) % len(model.classes_)
        full = model.contributions(X)[np.arange(len(X)), targets]
        assert np.array_equal(model.class_contributions(X, targets), full)
        clone = pickle.loads(pickle.dumps(model))
        assert "_per_class" not in clone.__dict__
        assert np.array_equal(clone.class_contributions(X, targets), full)


class CountingRanker(FixedRanker):
    """FixedRanker that records how many rows it was asked to rank."""

    def __init__(self):
        self.rows = 0

    def rank(self, tables, features):
        self.rows += len(features)
        return super().rank(tables, features)


def test_rare_ranking_is_skipped_only_where_it_cannot_change_the_list(predictor, predictor_tables):
    """Rows whose P(rare) is below the k-th common probability are not sent to the rare
    model; the listed differential must equal the head of the complete one."""
    bundle = pickle.loads(pickle.dumps(predictor))
    bundle.rare_model = CountingRanker()
    bundle.rare_rank_floor = 0.0  # exactness of the skip alone
    X = bundle.feature_builder.transform(predictor_tables).head(60)
    # top 1: with this small model P(rare) passes the 2nd common probability on most rows
    short = bundle.predict_features(X, top_k=1)
    asked = bundle.rare_model.rows
    full = bundle.predict_features(X, top_k=1000)
    assert bundle.rare_model.rows - asked == len(X)  # the complete list ranks every row
    assert 0 < asked < len(X)  # some rows skipped, some not
    for head, whole in zip(short, full, strict=True):
        assert head["differential"] == whole["differential"][:1]


def test_an_explanation_without_contributions_says_so(predictor, monkeypatch):
    """When no finding moved the top candidate (its trees never split on this patient),
    the explanation says so rather than showing an empty list."""
    bundle = pickle.loads(pickle.dumps(predictor))
    [normal] = bundle.predict_records([febrile_record()])
    assert normal["explanation"]["features"] and normal["explanation"]["note"] is None
    model = bundle.common_model if normal["explanation"]["model"] == "common" else bundle.gate_model
    monkeypatch.setattr(
        model,
        "class_contributions",
        lambda X, classes: np.zeros((len(X), len(model.feature_names) + 1)),
    )
    [flat] = bundle.predict_records([febrile_record()])
    assert flat["explanation"]["features"] == []
    assert flat["explanation"]["note"] == NO_CONTRIBUTION_NOTE
