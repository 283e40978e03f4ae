"""The synthetic corpus's vocabulary: the tables `notelm.data.synthetic` draws its patients and notes from.

Tables only, no logic (a drip's dose is a one-line lambda of the generator's ``random.Random``): note
categories and their weights, the nursing-note sections, diagnoses (each severity's respiratory support
and drips, reasons, plans), drips, past medical history, baselines, homes, allergies, skin, family,
deficits, pain, routine care, paraphrases, shift happenings, respiratory support levels and the CareVue
section labels. Imported by :mod:`notelm.data.synthetic` only (which passes NURSING_CATEGORIES on to its
users). Changing any entry, or the order of a list, changes the synthetic corpus.
"""

from __future__ import annotations

import re
from typing import Any

NURSING_CATEGORIES = ("Nursing", "Nursing/other")
OTHER_CATEGORIES = ("Radiology", "ECG", "Physician ", "Discharge summary")  # 'Physician ' has MIMIC's trailing space
OTHER_WEIGHTS = (0.35, 0.25, 0.3, 0.1)
SECTIONS = ("Neuro", "CV", "Resp", "GI/GU", "Skin", "Pain", "Social", "Plan")
OPTIONAL_SECTIONS = ("Skin", "Pain", "Social")  # left out of some notes, as nurses do


# ---------------------------------------------------------------------------------------------
# Vocabulary. Severity runs 0 (ready for the floor) .. 3 (sickest); each diagnosis maps a severity
# to its respiratory support and its drips.

DIAGNOSES: dict[str, dict[str, Any]] = {
    "urosepsis": dict(
        reason=["urosepsis", "sepsis from a urinary source", "fever and hypotension, found to have a UTI"],
        start=(2, 3), resp=("ra", "nc", "nc", "vent"), drips=((), (), ("levophed",), ("levophed", "propofol")),
        abx="vanco/zosyn", service="MEDICINE", study="chest",
        plan=["Continue vanco/zosyn, f/u urine and blood cx.", "Wean levophed to keep MAP > 65.",
              "Trend lactate and WBC.", "IVF bolus PRN for UO < 30 cc/hr."],
    ),
    "pneumonia": dict(
        reason=["community acquired pneumonia", "RLL pneumonia and hypoxia", "hypoxic resp failure from pneumonia"],
        start=(1, 3), resp=("nc", "nc", "hiflow", "vent"), drips=((), (), (), ("propofol", "fentanyl")),
        abx="ceftriaxone/azithro", service="MEDICINE", study="chest",
        plan=["Continue ceftriaxone/azithro, f/u sputum cx.", "Wean O2 to keep SpO2 > 92%.",
              "Encourage IS and cough/deep breathing.", "Chest PT and nebs as ordered."],
    ),
    "chf": dict(
        reason=["acute on chronic systolic CHF exacerbation", "CHF exacerbation with volume overload",
                "SOB and LE edema, found to be in CHF"],
        start=(1, 3), resp=("nc", "nc", "bipap", "bipap"), drips=((), (), ("lasix",), ("lasix", "nitro")),
        abx=None, service="MEDICINE", study="chest",
        plan=["Continue diuresis, goal net negative 1-2 L.", "Strict I/O, daily weights.",
              "Replete K and Mg per sliding scale.", "Fluid restriction 1.5 L, 2 g Na diet."],
    ),
    "copd": dict(
        reason=["COPD exacerbation", "hypercarbic resp failure from COPD flare", "SOB and wheezing, COPD flare"],
        start=(1, 3), resp=("nc", "nc", "bipap", "vent"), drips=((), (), (), ("propofol",)),
        abx="azithro", service="MEDICINE", study="chest",
        plan=["Continue nebs q4h and solumedrol IV.", "BiPAP at night and PRN for increased WOB.",
              "Titrate O2 to SpO2 88-92%.", "Repeat ABG in AM."],
    ),
    "gi_bleed": dict(
        reason=["upper GI bleed", "melena and Hct drop", "hematemesis, likely UGIB"],
        start=(1, 3), resp=("ra", "ra", "nc", "nc"), drips=((), ("protonix",), ("protonix",), ("protonix",)),
        abx=None, service="MEDICINE", study="abdomen",
        plan=["Hct q6h, transfuse for Hct < 25.", "Continue protonix, NPO for EGD.",
              "Keep 2 large bore PIVs and type and cross current.", "Monitor stools for melena."],
    ),
    "dka": dict(
        reason=["DKA", "diabetic ketoacidosis", "hyperglycemia and anion gap acidosis, DKA"],
        start=(2, 3), resp=("ra", "ra", "ra", "nc"), drips=((), (), ("insulin",), ("insulin",)),
        abx=None, service="MEDICINE", study="chest",
        plan=["FS q1h while on insulin gtt, lytes q4h.", "Transition to SQ insulin once gap closed.",
              "Replete K to keep > 4.0.", "Diabetes teaching when more alert."],
    ),
    "cabg": dict(
        reason=["CAD, now s/p CABG x3", "3 vessel CAD, now s/p CABG", "NSTEMI, now s/p CABG x4"],
        start=(2, 3), resp=("nc", "nc", "nc", "vent"), drips=((), (), ("neo",), ("neo", "propofol")),
        abx="cefazolin", service="CARDIOTHORACIC", study="chest",
        plan=["Wean neo to keep MAP > 60.", "Pull chest tubes when drainage < 100 cc/8h.",
              "OOB to chair, advance activity with PT.", "Diurese with lasix IV as ordered."],
    ),
    "stroke": dict(
        reason=["L MCA stroke", "acute ischemic stroke", "R sided weakness and aphasia, CVA"],
        start=(1, 3), resp=("ra", "ra", "nc", "nc"), drips=((), (), ("nicardipine",), ("nicardipine",)),
        abx=None, service="NEUROLOGY", study="head",
        plan=["Neuro checks q1h, call for any change.", "Keep SBP < 160 with nicardipine gtt.",
              "Aspiration precautions, speech and swallow eval.", "PT/OT consults."],
    ),
    "etoh": dict(
        reason=["ETOH withdrawal", "alcohol withdrawal with hallucinations", "ETOH withdrawal, s/p seizure at home"],
        start=(1, 3), resp=("ra", "ra", "ra", "nc"), drips=((), (), (), ("propofol",)),
        abx=None, service="MEDICINE", study="head",
        plan=["Continue CIWA scale with valium PRN.", "Seizure precautions.",
              "Thiamine, folate, MVI daily.", "Social work consult for ETOH cessation."],
    ),
    "afib": dict(
        reason=["AFib with RVR", "new onset AFib with RVR", "palpitations, found to be in AFib with RVR"],
        start=(1, 2), resp=("ra", "ra", "nc", "nc"), drips=((), ("heparin",), ("dilt", "heparin"), ("dilt", "heparin")),
        abx=None, service="MEDICINE", study="chest",
        plan=["Rate control with dilt, goal HR < 110.", "Heparin gtt per protocol, PTT q6h.",
              "Transition to po metoprolol.", "TTE in AM."],
    ),
    "pancreatitis": dict(
        reason=["acute pancreatitis", "gallstone pancreatitis", "epigastric pain, found to have pancreatitis"],
        start=(1, 2), resp=("ra", "nc", "nc", "nc"), drips=((), (), (), ()),
        abx=None, service="SURGERY", study="abdomen",
        plan=["NPO, IVF LR at 200 cc/hr.", "Pain control with dilaudid PRN.",
              "Trend lipase and LFTs.", "Advance diet as tolerated once pain free."],
    ),
    "pe": dict(
        reason=["bilateral PE", "submassive PE", "pleuritic CP and SOB, found to have PE"],
        start=(1, 2), resp=("ra", "nc", "nc", "hiflow"), drips=((), ("heparin",), ("heparin",), ("heparin",)),
        abx=None, service="MEDICINE", study="chest",
        plan=["Heparin gtt per protocol, PTT q6h.", "Transition to lovenox/coumadin.",
              "LENIs to eval for DVT.", "OOB with assist once therapeutic."],
    ),
}

# drip key -> (the way a nurse names it, how to render a dose)
DRIPS: dict[str, tuple[str, Any]] = {
    "levophed": ("Levophed", lambda r: f"{r.choice([0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15])} mcg/kg/min"),
    "neo": ("Neo", lambda r: f"{r.choice([0.5, 0.75, 1, 1.25, 1.5, 2])} mcg/kg/min"),
    "propofol": ("Propofol", lambda r: f"{r.choice([10, 15, 20, 25, 30, 40, 50])} mcg/kg/min"),
    "fentanyl": ("Fentanyl", lambda r: f"{r.choice([25, 50, 75, 100, 150])} mcg/hr"),
    "heparin": ("Heparin", lambda r: f"{r.randrange(700, 1600, 50)} units/hr"),
    "insulin": ("Insulin", lambda r: f"{r.randint(1, 10)} units/hr"),
    "lasix": ("Lasix", lambda r: f"{r.choice([5, 10, 15, 20])} mg/hr"),
    "nitro": ("Nitro", lambda r: f"{r.choice([20, 40, 60, 80, 100])} mcg/min"),
    "dilt": ("Dilt", lambda r: f"{r.choice([5, 10, 15])} mg/hr"),
    "nicardipine": ("Nicardipine", lambda r: f"{r.choice([2.5, 5, 7.5, 10])} mg/hr"),
    "protonix": ("Protonix", lambda r: "8 mg/hr"),
}

TITRATED = ("levophed", "neo", "propofol", "fentanyl", "nitro", "nicardipine")  # drips one weans rather than stops

PMH = [
    "HTN", "DM2", "CAD", "hyperlipidemia", "CKD stage III", "COPD", "AFib on coumadin", "CHF with EF 30%",
    "hypothyroidism", "depression", "GERD", "OSA on CPAP", "PVD", "prior CVA", "ETOH abuse", "obesity",
    "anemia", "BPH", "osteoarthritis", "s/p R TKR", "s/p appy", "breast CA s/p lumpectomy", "gout", "dementia",
]
BASELINES = [
    "At baseline A&O x3 and ambulates independently.",
    "At baseline A&O x3, ambulates with a walker.",
    "Baseline mental status A&O x3, independent with ADLs.",
    "At baseline pleasantly confused, A&O x1-2, needs assist with ADLs.",
    "Per family pt is HOH, wears glasses, ambulates with a cane.",
    "At baseline uses a wheelchair, A&O x3.",
]
HOMES = [
    "lives with wife in [**Location (un) 583**]", "lives with husband", "lives alone in an apartment",
    "lives with daughter in [**Location (un) 2274**]", "resides at [**Hospital 100**] rehab",
    "lives with son and his family", "lives with partner in [**Location 1268**]",
]
ALLERGIES = ["NKDA", "PCN (rash)", "Sulfa (hives)", "Codeine (nausea)", "NKDA", "Iodine contrast", "Morphine (itching)"]
SKIN = [
    "Skin intact.", "Skin intact, bony prominences pink and blanchable.",
    "Stage II pressure ulcer on coccyx, duoderm in place.", "Stage I on coccyx, mepilex applied.",
    "Skin dry and flaky, scattered ecchymoses on arms.", "Bilat heels boggy, offloaded with pillows.",
]
FAMILY = ["Wife", "Husband", "Daughter", "Son", "Sister", "Niece", "Brother"]
DEFICITS = ["R sided weakness and R facial droop", "expressive aphasia and R arm drift",
            "L sided neglect and L hemiparesis", "dysarthria and R hand weakness"]
PAIN_MEDS = ["oxycodone 5 mg po", "morphine 2 mg IV", "dilaudid 0.5 mg IV", "tylenol 650 mg po", "percocet 1 tab po"]
PAIN_SITES = ["back", "abd", "chest wall", "generalized", "R hip", "L shoulder"]
CARE_EXTRAS = [
    "Turned and repositioned q2h.", "Fall precautions maintained.", "Oral care done.", "Bed alarm on.",
    "Call light within reach.", "Pneumoboots on.", "HOB > 30 degrees.", "Safety maintained.",
    "Up to chair with assist x1.", "Meds given as ordered.", "Daily weight done.", "Will continue to monitor.",
]
# Nurses say the same thing many ways: (pattern, its variants). A freshly written sentence takes a random variant
# of each phrase it holds with probability `synthetic.variation`; a section carried forward keeps its wording.
PARAPHRASES: list[tuple[re.Pattern, list[str]]] = [(re.compile(pattern), variants) for pattern, variants in [
    (r"\bA&O x3\b", ["AAOx3", "alert and oriented x3", "A+Ox3", "oriented to person, place and time"]),
    (r"\bMAE\b", ["moves all extremities", "MAE equally", "moving all 4 ext"]),
    (r"\bPERRL\b", ["pupils equal and reactive", "PERRLA", "pupils 3mm brisk"]),
    (r"\bFollows commands\.", ["Following commands consistently.", "Able to follow simple commands.", "Obeys commands."]),
    (r"\bLS clear bilat\b", ["Lungs clear throughout", "Breath sounds clear", "CTA bilaterally", "Lungs CTA"]),
    (r"\bLS coarse bilat\b", ["Lungs coarse throughout", "Rhonchi bilaterally", "Coarse breath sounds"]),
    (r"\bLS diminished at bases\b", ["Breath sounds decreased at bases", "Diminished bibasilar", "Decreased BS at bases"]),
    (r"\bAbd soft NT/ND, \+BS\.", ["Abdomen soft, nontender, nondistended, bowel sounds present.",
                                       "Abd benign, BS active x4.", "Abd soft, non-tender, hypoactive BS."]),
    (r"\bFoley draining clear yellow urine\b", ["Foley patent draining amber urine", "Foley to gravity, yellow urine",
                                                  "Indwelling catheter with clear output"]),
    (r"\bupdated on plan of care\b", ["questions answered", "informed of current status", "updated by team",
                                        "emotional support given"]),
    (r"\bwith good effect\b", ["with relief", "effectively", "with partial relief", "and pain now tolerable"]),
    (r"\bTolerating\b", ["Tol", "Taking", "Pt eating"]),
    (r"\bthis shift\b", ["today", "overnight", "so far", "during shift"]),
    (r"\bas ordered\b", ["per MD order", "as prescribed", "per orders"]),
    (r"\bno ectopy\b", ["without ectopy", "no VEA noted", "rhythm regular"]),
    (r"\bPulses palp, extremities warm\.", ["Peripheral pulses palpable.", "Pedal pulses dopplerable, feet warm."]),
    (r"\bCont to monitor closely\.", ["Will continue close monitoring.", "Monitor hemodynamics.", "Watch closely."]),
    (r"\bF/u AM labs\.", ["Follow up morning labs.", "AM labs pending.", "Check labs in AM."]),
    (r"\bPt\b", ["Patient", "pt", "Pt."]),
]]
NARRATIVE = [  # things that happen on a shift, each in its own words: they make notes differ as real notes do
    "Seen by PT, ambulated {n} ft with walker and assist.", "Chaplain visited at family's request.",
    "Wound care RN consulted for sacral area.", "Pt requested ice chips, mouth swabs given.",
    "Family meeting held with team re goals of care.", "Pt tearful at times, reassurance provided.",
    "Dietitian following, calorie counts started.", "Bath given, linens changed.", "Pt watching TV, conversant.",
    "Speech therapy eval done, cleared for thin liquids.", "New PIV placed in L forearm by IV team.",
    "Pt anxious about upcoming procedure, questions answered.", "Pharmacy consulted re dosing.",
    "Blood cx x2 sent from PIV and line.", "CXR done at {t}, result pending.", "Stool sent for c diff.",
    "Repositioned for comfort, pillows under heels.", "Resident at bedside to assess.", "Sitter at bedside for safety.",
    "Pt refused AM meds, MD aware.", "Case mgmt following for dispo planning.", "Social work met with family.",
]
NO_EVENTS = ["No acute events this shift.", "Uneventful shift.", "Pt resting comfortably most of shift.",
             "Stable shift, no acute issues."]
NO_EVENTS_NIGHT = ["No events overnight.", "Uneventful night.", "Slept in naps, no acute events."]


RESP_LEVEL = ("ra", "nc", "hiflow", "bipap", "vent")  # least to most support
RESP_NAME = {"ra": "RA", "nc": "NC", "hiflow": "high flow", "bipap": "BiPAP", "vent": "the vent"}
CAREVUE_LABELS = {"Neuro": "NEURO", "CV": "CV", "Resp": "RESP", "GI/GU": "GI/GU", "Skin": "SKIN", "Pain": "PAIN",
                  "Social": "SOCIAL", "Plan": "PLAN", "Events": "EVENTS"}
