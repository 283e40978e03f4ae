"""A seeded synthetic NOTEEVENTS corpus in the MIMIC-III schema: `generate_rows(cfg)` and `corpus_stats(rows)`.

Every patient gets a small profile (age, sex, admitting diagnosis, past medical history, baseline,
family contact, skin, allergies, code status) and each admission a severity trajectory (organ support,
drips, oxygen) that drives a run of nursing progress notes across day (0700-1900) and night (1900-0700)
shifts. The notes are written system by system (Neuro, CV, Resp, GI/GU, Skin, Pain, Social, Plan) with
vitals, drips, meds, the usual abbreviations and MIMIC-style de-identification placeholders
(``[**Hospital1 18**]``, ``[**2101-3-4**]``, ...). Like real notes, a patient's later notes carry text
forward from earlier ones: the history sentence verbatim, unchanged systems verbatim or with a small edit.
Physician, Radiology, ECG and Discharge summary rows, a few ``ISERROR=1`` rows and a couple of blank
rows are mixed in so that prepare's filters have work.

Everything is drawn from one ``random.Random(cfg.seed)``, so the same params give the same rows (and the
order of the draws is part of the promise: reordering them changes the corpus). The words come from
:mod:`notelm.data.synthetic_vocab`. Rows are dicts keyed by the NOTEEVENTS columns that the synthesize stage
(:mod:`notelm.stages.synthesize`, ``COLUMNS``) writes to data/raw/NOTEEVENTS.csv.gz; benchmarks/audit.py
uses the nursing rows in memory.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from notelm.config.synthetic import SyntheticParams
from notelm.core.errors import ParamsError
from notelm.data.synthetic_vocab import (
    ALLERGIES,
    BASELINES,
    CARE_EXTRAS,
    CAREVUE_LABELS,
    DEFICITS,
    DIAGNOSES,
    DRIPS,
    FAMILY,
    HOMES,
    NARRATIVE,
    NO_EVENTS,
    NO_EVENTS_NIGHT,
    NURSING_CATEGORIES,
    OPTIONAL_SECTIONS,
    OTHER_CATEGORIES,
    OTHER_WEIGHTS,
    PAIN_MEDS,
    PAIN_SITES,
    PARAPHRASES,
    PMH,
    RESP_LEVEL,
    RESP_NAME,
    SECTIONS,
    SKIN,
    TITRATED,
)


def _d(day: date) -> str:
    """A MIMIC-style de-identified date placeholder, e.g. [**2101-3-4**]."""
    return f"[**{day.year}-{day.month}-{day.day}**]"


def _name(r: random.Random) -> str:
    """A MIMIC-style de-identified first name placeholder."""
    pattern = r.choice(["First Name8 (NamePattern2)", "First Name4 (NamePattern1)", "Name (NI)", "First Name (Titles)"])
    return f"[**{pattern} {r.randint(10, 9999)}**]"


def _hour(r: random.Random, night: bool) -> str:
    """A clock time inside the shift, as nurses write it (e.g. 1400)."""
    hour = r.choice([20, 21, 22, 23, 0, 1, 2, 3, 4]) if night else r.randint(8, 17)
    return f"{hour:02d}{r.choice(['00', '15', '30', '45'])}"


# ---------------------------------------------------------------------------------------------
# Patients and admissions


@dataclass
class _Patient:
    subject_id: int
    age: int
    sex: str
    dx: str
    pmh: list[str]
    history: str  # the copy-forward sentence: age, sex, PMH
    baseline: str
    rhythm: str
    allergies: str
    code: str
    family: str
    skin: str
    deficit: str
    category: str
    style: int  # which header form this patient's nurses use
    dob: date


@dataclass
class _Admission:
    hadm_id: int
    dx: str
    reason: str
    admit: datetime
    source: str
    lines: str
    severities: list[int]
    nurses: list[int]


def _make_patient(r: random.Random, subject_id: int, first_admit: datetime) -> _Patient:
    """Draw one patient's profile; every field stays fixed across their admissions and notes."""
    age = r.randint(38, 89)
    sex = r.choice("MF")
    dx = r.choice(list(DIAGNOSES))
    pmh = r.sample(PMH, r.randint(2, 5))
    if dx == "dka" and "DM2" not in pmh:
        pmh[0] = "DM1"
    if dx == "etoh" and "ETOH abuse" not in pmh:
        pmh[0] = "ETOH abuse"
    history = f"{age} y/o {sex} with PMH of {', '.join(pmh)}"
    if r.random() < 0.5:
        history += (f", followed by Dr. [**Last Name (STitle) {r.randint(100, 9999)}**]"
                    f" at [**Hospital1 {r.randint(2, 99)}**]")
    rhythm = "AFib" if any("AFib" in p for p in pmh) or dx == "afib" else r.choice(["SR", "NSR", "SR", "ST", "SB"])
    baseline = r.choice(BASELINES) + f" Pt {r.choice(HOMES)}."
    return _Patient(
        subject_id=subject_id, age=age, sex=sex, dx=dx, pmh=pmh, history=history, baseline=baseline,
        rhythm=rhythm, allergies=r.choice(ALLERGIES),
        code=r.choice(["Full code", "Full code", "DNR/DNI", "DNR, OK to intubate"]),
        family=f"{r.choice(FAMILY)} {_name(r)}", skin=r.choice(SKIN), deficit=r.choice(DEFICITS),
        category="Nursing/other" if r.random() < 0.25 else "Nursing", style=r.randrange(3),
        dob=date(first_admit.year - age, r.randint(1, 12), r.randint(1, 28)),
    )


def _trajectory(r: random.Random, start: tuple[int, int], n: int) -> list[int]:
    """Severity per note: mostly improving, sometimes worse for a while."""
    sev = [r.randint(*start)]
    for _ in range(n - 1):
        x = r.random()
        step = -1 if x < 0.45 else (1 if x > 0.9 else 0)
        sev.append(min(3, max(0, sev[-1] + step)))
    return sev


# ---------------------------------------------------------------------------------------------
# One nursing note, section by section. Each section function returns a list of sentences; the
# first ones always appear, so a small copy-forward edit can swap one sentence for a fresh one.


def _drips(adm: _Admission, sev: int) -> tuple[str, ...]:
    return DIAGNOSES[adm.dx]["drips"][sev]


def _resp_mode(adm: _Admission, sev: int) -> str:
    return DIAGNOSES[adm.dx]["resp"][sev]


def _neuro(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    mode, drips = _resp_mode(adm, sev), _drips(adm, sev)
    if mode == "vent":
        sed = "Propofol" if "propofol" in drips else "Fentanyl"
        dose = DRIPS["propofol" if sed == "Propofol" else "fentanyl"][1](r)
        out = [f"Sedated on {sed.lower()} gtt at {dose}, RASS {r.choice(['-1', '-2', '-3'])}.",
               "Opens eyes to voice, "
               + r.choice(["follows simple commands.", "does not consistently follow commands.", "MAE on bed."]),
               f"PERRL {r.choice(['2', '3'])}mm brisk."]
    elif adm.dx == "etoh":
        out = [f"A&O x{r.choice(['2', '3'])}, tremulous and anxious, CIWA {r.randint(6, 22)}.",
               f"Given valium {r.choice(['10', '20'])} mg po x{r.randint(1, 3)} with good effect.",
               r.choice(["No hallucinations this shift.", "Reports seeing bugs on the wall, easily reoriented."])]
    elif adm.dx == "stroke":
        out = [f"A&O x{r.choice(['2', '3'])}, {p.deficit}.", "PERRL, neuro checks q1h unchanged from prior exam.",
               r.choice(["Follows commands.", "Speech slow but clear.", "Able to make needs known."])]
    elif "dementia" in p.pmh or "confused" in p.baseline:
        out = [f"A&O x{r.choice(['1', '1-2', '2'])}, pleasantly confused, at baseline per family.", "MAE, PERRL.",
               r.choice(["Reoriented frequently.", "Bed alarm on, no attempts to get OOB."])]
    else:
        out = ["A&O x3, MAE, PERRL.", r.choice(["Follows commands.", "Calm and cooperative.", "Appropriate."]),
               r.choice(["Slept in naps overnight.", "No focal deficits.", "Up in chair for 2 hrs."])]
    return out


def _cv(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    drips = _drips(adm, sev)
    lo = r.randint(60, 95) + (15 if sev >= 2 else 0) + (25 if p.rhythm == "AFib" and adm.dx == "afib" and sev else 0)
    hi = lo + r.randint(8, 25)
    rhythm = "ST" if lo > 100 and p.rhythm in ("SR", "NSR") else p.rhythm
    sbp = r.randint(88, 135) - (12 if "levophed" in drips or "neo" in drips else 0)
    out = [f"HR {lo}-{hi} {rhythm}, {r.choice(['no ectopy', 'no ectopy', 'occasional PVCs', 'rare PACs'])}.",
           f"BP {sbp}-{sbp + r.randint(10, 30)}/{r.randint(45, 60)}-{r.randint(60, 80)}."]
    for key in drips:
        if key in ("levophed", "neo"):
            out.append(f"{DRIPS[key][0]} gtt at {DRIPS[key][1](r)}, titrated to keep MAP > {r.choice(['60', '65'])}.")
        elif key == "heparin":
            out.append(f"Heparin gtt at {DRIPS[key][1](r)}, PTT {r.randint(45, 99)} at {_hour(r, False)}, "
                       "rate adjusted per protocol.")
        elif key in ("nitro", "dilt", "nicardipine"):
            out.append(f"{DRIPS[key][0]} gtt at {DRIPS[key][1](r)}.")
    out.append(r.choice([
        "Pulses palp, extremities warm.", f"+{r.randint(1, 3)} pitting edema BLE.",
        f"K {r.randint(32, 39) / 10} repleted with {r.choice(['20', '40'])} meq KCl.",
        f"Mg {r.randint(14, 19) / 10} repleted with 2 gm Mg sulfate.", "Extremities warm, CRT < 3 sec.",
    ]))
    if adm.dx == "cabg":
        out.append(f"Epicardial wires capped, {r.choice(['A', 'V', 'AV'])} wires intact.")
    return out


def _resp(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    mode = _resp_mode(adm, sev)
    ls = r.choice(["LS clear bilat", "LS coarse bilat", "LS diminished at bases", "LS with crackles at bases",
                   "LS with exp wheezes throughout", "LS clear upper, diminished lower lobes"])
    spo2 = f"SpO2 {r.randint(90, 95)}-{r.randint(96, 100)}%"
    if mode == "vent":
        out = [f"Intubated on {r.choice(['AC', 'CMV', 'PSV'])} {r.choice(['450', '500', '550'])}x{r.randint(12, 18)}, "
               f"PEEP {r.choice(['5', '8', '10'])}, FiO2 {r.choice(['40', '50', '60'])}%.",
               f"{ls}, {spo2}.",
               f"Suctioned for {r.choice(['small', 'mod', 'large'])} amts of "
               f"{r.choice(['thick tan', 'thin white', 'yellow'])} secretions."]
    elif mode == "bipap":
        out = [f"On BiPAP {r.choice(['10/5', '12/5', '14/6'])} FiO2 {r.choice(['40', '50'])}% most of shift.",
               f"{ls}, {spo2}, RR {r.randint(20, 30)}.",
               r.choice(["Tolerating mask well.", "Off BiPAP for meals, on 4L NC.",
                         "Using accessory muscles at times."])]
    elif mode == "hiflow":
        out = [f"On high flow neb {r.choice(['50', '70'])}% with {r.choice(['4', '6'])}L NC.",
               f"{ls}, {spo2}, RR {r.randint(18, 28)}.",
               r.choice(["Desats to high 80s with activity.", "Weak cough, nonproductive."])]
    elif mode == "nc":
        out = [f"On {r.randint(2, 5)}L NC, {spo2}, RR {r.randint(14, 24)}.", f"{ls}.",
               r.choice(["Using IS, pulling 750.", "Nonproductive cough.", "Encouraged to C&DB.", "No SOB at rest."])]
    else:
        out = [f"On RA, {spo2}, RR {r.randint(12, 20)}.", f"{ls}.", r.choice(["No SOB.", "Using IS.", "Denies SOB."])]
    if adm.dx == "copd":
        out.append("Albuterol/atrovent nebs q4h, solumedrol IV as ordered.")
    if "OSA on CPAP" in p.pmh and mode in ("nc", "ra"):
        out.append("Home CPAP on at night.")
    return out


def _gigu(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    mode, drips = _resp_mode(adm, sev), _drips(adm, sev)
    npo = mode == "vent" or adm.dx in ("gi_bleed", "pancreatitis") and sev >= 1
    if mode == "vent":
        diet = f"OGT in place, TF at goal {r.choice(['40', '50', '60'])} cc/hr."
    elif npo:
        diet = "NPO except meds."
    else:
        diet = r.choice(["Tolerating po diet.", "Tolerating cardiac diet, fair appetite.",
                         "Tolerating clears, advance as tolerated."])
    abd = ("Abd firm, tender to palp, hypoactive BS." if adm.dx == "pancreatitis" and sev >= 1
           else "Abd soft NT/ND, +BS.")
    bm = ("Melena x1, guaiac +." if adm.dx == "gi_bleed" and sev >= 1 else
          r.choice(["No BM this shift.", "Small soft brown BM.", "Large loose BM, guaiac neg.", "Passing flatus."]))
    if mode == "vent" or sev >= 2:
        gu = f"Foley draining clear yellow urine, UO {r.randint(25, 90)} cc/hr."
    else:
        gu = r.choice([f"Foley draining clear yellow urine, UO {r.randint(30, 100)} cc/hr.",
                       "Voiding qs in urinal.", "Voiding qs on bedpan.", "Foley d/c'd, due to void."])
    out = [f"{abd} {diet}", bm, gu]
    if "lasix" in drips:
        out.append(f"Lasix gtt at {DRIPS['lasix'][1](r)}, net {-r.randrange(300, 2000, 100)} cc since MN.")
    elif adm.dx in ("chf", "cabg"):
        out.append(f"Lasix {r.choice(['20', '40', '80'])} mg IV given with good response.")
    if "insulin" in drips:
        out.append(f"Insulin gtt at {DRIPS['insulin'][1](r)}, FS q1h {r.randint(140, 260)}, AG {r.randint(10, 22)}.")
    elif "DM2" in p.pmh or "DM1" in p.pmh:
        out.append(f"FS {r.randint(110, 240)}, covered with RISS.")
    if "protonix" in drips:
        out.append(f"Protonix gtt at 8 mg/hr, Hct {r.randint(22, 31)}.{r.randint(0, 9)}.")
    return out


def _skin(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    out = [p.skin, f"Access: {adm.lines}."]
    if adm.dx == "cabg":
        out.append(f"Sternal incision with DSD, C/D/I. CT to sx, {r.randint(10, 80)} cc serosang "
                   f"since {_hour(r, False)}.")
    return out


def _pain(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    if _resp_mode(adm, sev) == "vent":
        return [r.choice(["Unable to assess verbally, appears comfortable on sedation.",
                          "No grimacing or signs of pain, on fentanyl as ordered."])]
    if r.random() < 0.4:
        return [r.choice(["Denies pain.", "Denies pain this shift.", "Pt states pain 0/10."])]
    site = "incisional" if adm.dx == "cabg" else r.choice(PAIN_SITES)
    return [f"C/o {site} pain {r.randint(3, 8)}/10, given {r.choice(PAIN_MEDS)} PRN with good effect."]


def _social(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    how = r.choice(["called for update", "at bedside this afternoon", "visited", "called overnight"])
    return [f"{p.family} {how}, updated on plan of care.", f"{p.code}."]


def _plan(r: random.Random, p: _Patient, adm: _Admission, sev: int) -> list[str]:
    dx = DIAGNOSES[adm.dx]
    out = r.sample(dx["plan"], 2)
    if sev == 0:
        out.append(r.choice(["Call out to floor when bed available.", "Possible transfer to floor today.",
                             "Screened for rehab, case mgmt following."]))
    else:
        out.append(r.choice(["F/u AM labs.", "Cont to monitor closely.", "Cont current plan of care.", "F/u cx data."]))
    if dx["abx"] and sev >= 1 and r.random() < 0.5:
        out.append(f"Cont {dx['abx']}.")
    return out


SECTION_FUNCS = {"Neuro": _neuro, "CV": _cv, "Resp": _resp, "GI/GU": _gigu, "Skin": _skin,
                 "Pain": _pain, "Social": _social, "Plan": _plan}


def _signature(name: str, adm: _Admission, sev: int) -> Any:
    """What a section depends on: it may only be carried forward while this is unchanged."""
    mode, drips = _resp_mode(adm, sev), _drips(adm, sev)
    return {"Neuro": mode, "CV": drips, "Resp": mode, "GI/GU": (mode, drips, sev >= 1), "Skin": None,
            "Pain": mode, "Social": None, "Plan": sev}[name]


def _events(r: random.Random, adm: _Admission, prev: int | None, sev: int, night: bool) -> list[str]:
    """The shift's events: arrival, changes in support since the last note, or a quiet shift."""
    if prev is None:
        return [f"Pt arrived to unit from {adm.source} at {_hour(r, night)}, oriented to room and call light."]
    out = []
    old_mode, new_mode = _resp_mode(adm, prev), _resp_mode(adm, sev)
    if old_mode != new_mode:
        if old_mode == "vent":
            out.append(f"Extubated at {_hour(r, night)} to {'RA' if new_mode == 'ra' else 'NC'} without difficulty.")
        elif new_mode == "vent":
            out.append(f"Intubated at {_hour(r, night)} for increased WOB and hypoxia.")
        elif new_mode == "bipap":
            out.append("Placed on BiPAP for increased WOB.")
        elif RESP_LEVEL.index(new_mode) > RESP_LEVEL.index(old_mode):
            out.append(f"Desaturated to high 80s at {_hour(r, night)}, placed on {RESP_NAME[new_mode]}.")
        else:
            out.append(f"Weaned from {RESP_NAME[old_mode]} to {RESP_NAME[new_mode]}.")
    old_drips, new_drips = _drips(adm, prev), _drips(adm, sev)
    for key in old_drips:
        if key not in new_drips:
            how = "weaned off" if key in TITRATED else "d/c'd"
            out.append(f"{DRIPS[key][0]} gtt {how} at {_hour(r, night)}.")
    for key in new_drips:
        if key not in old_drips:
            out.append(f"{DRIPS[key][0]} gtt started at {_hour(r, night)}.")
    if adm.dx == "gi_bleed" and sev >= 2 and r.random() < 0.6:
        out.append(f"Transfused {r.randint(1, 2)} units PRBC for Hct {r.randint(20, 24)}.{r.randint(0, 9)}.")
    return out or [r.choice(NO_EVENTS_NIGHT if night and r.random() < 0.6 else NO_EVENTS)]


def _header(p: _Patient, night: bool) -> str:
    shift = "1900-0700" if night else "0700-1900"
    if p.category == "Nursing/other":
        return f"NPN {'7p-7a' if night else '7a-7p'}"
    return ["Nursing Progress Note " + shift, "NPN " + shift, "Nursing Note " + shift][p.style]


def _render(lines: list[tuple[str, list[str]]], carevue: bool = False) -> str:
    """Join sections into note text, one labelled line per section (upper-case labels in CareVue notes)."""
    label = CAREVUE_LABELS.get if carevue else (lambda name, _=None: name)
    return "\n".join(f"{label(name, name)}: {' '.join(sents)}" if name else " ".join(sents) for name, sents in lines)


def _words(text: str) -> int:
    return len(text.split())


def _paraphrase(r: random.Random, sentence: str, variation: float) -> str:
    """`sentence` with each phrase of PARAPHRASES it holds replaced by a random variant, with probability `variation`."""
    for pattern, variants in PARAPHRASES:
        if pattern.search(sentence) and r.random() < variation:
            sentence = pattern.sub(r.choice(variants), sentence, count=1)
    return sentence


def _narrative(r: random.Random, night: bool) -> str:
    """One of the shift's happenings, with its own number or time filled in."""
    return r.choice(NARRATIVE).format(n=r.choice([20, 50, 100, 150]), t=_hour(r, night))


def _nursing_note(r: random.Random, cfg: SyntheticParams, p: _Patient, adm: _Admission, i: int, night: bool,
                  carried: dict[str, tuple[Any, list[str]]]) -> str:
    """Write note `i` of an admission; `carried` holds the previous note's sections and is updated in place."""
    sev, prev = adm.severities[i], (adm.severities[i - 1] if i else None)
    intro = [f"{p.history}, admitted {_d(adm.admit.date())} from {adm.source} with {adm.reason}.",
             f"Allergies: {p.allergies}.", p.baseline]
    if i and r.random() < cfg.variation / 2:  # later notes often skip the history the chart already holds
        intro = intro[1:2] if r.random() < 0.5 else []
    events = _events(r, adm, prev, sev, night)
    events += [_narrative(r, night) for _ in range(2) if r.random() < cfg.variation]
    lines: list[tuple[str, list[str]]] = [("", [_header(p, night)]), ("", intro), ("Events", events)]
    fresh_names = ["Events"]
    for name in SECTIONS:
        if name in OPTIONAL_SECTIONS and r.random() < cfg.variation / 4:
            continue  # not documented this shift
        sig = _signature(name, adm, sev)
        new = [_paraphrase(r, sentence, cfg.variation) for sentence in SECTION_FUNCS[name](r, p, adm, sev)]
        if name in carried and carried[name][0] == sig and r.random() < cfg.copy_forward:
            sents = list(carried[name][1])
            j = r.randrange(min(len(sents), len(new)))
            if r.random() < 0.35 and new[j] not in sents:  # a small edit to an otherwise copied section
                sents[j] = new[j]
        else:
            sents = new
            fresh_names.append(name)
        lines.append((name, sents))

    # Steer towards a length drawn from the word range: add one routine-care sentence to each of
    # some freshly written sections, or drop optional third-and-later sentences of fresh sections.
    target = r.randint(*cfg.words_per_note)
    fresh = [sents for name, sents in lines if name in fresh_names]
    extras = r.sample(CARE_EXTRAS, len(fresh))
    for sents in r.sample(fresh, len(fresh)):
        if _words(_render(lines)) >= target:
            break
        sents.append(extras.pop())
    while _words(_render(lines)) > target and any(len(s) > 2 for s in fresh):
        max((s for s in fresh if len(s) > 2), key=len).pop()
    while _words(_render(lines)) > cfg.words_per_note[1] and any(len(s) > 1 for s in fresh):
        max((s for s in fresh if len(s) > 1), key=len).pop()

    for name, sents in lines:
        if name in SECTIONS:
            carried[name] = (_signature(name, adm, sev), sents)
    return _render(lines, carevue=p.category == "Nursing/other")


# ---------------------------------------------------------------------------------------------
# Other categories: short, but in the shapes MIMIC has them.


def _physician(r: random.Random, p: _Patient, adm: _Admission, sev: int, when: datetime) -> tuple[str, str]:
    dx = DIAGNOSES[adm.dx]
    tmax = round(r.uniform(36.6, 38.9), 1)
    hr = r.randint(60, 120)
    text = "\n".join([
        f"Chief Complaint: {adm.reason}",
        "24 Hour Events:",
        *_events(r, adm, min(3, sev + 1), sev, False),
        "Allergies:", p.allergies,
        "Last dose of Antibiotics:", f"{dx['abx'] or 'None'} - {_d(when.date())} {r.randint(0, 11):02d}:00 AM",
        "Vital signs",
        f"Tmax: {tmax} C ({round(tmax * 9 / 5 + 32, 1)} F)",
        f"HR: {hr} ({hr - r.randint(5, 15)} - {hr + r.randint(5, 20)}) bpm",
        f"BP: {r.randint(90, 140)}/{r.randint(45, 80)}({r.randint(60, 95)}) mmHg",
        f"RR: {r.randint(12, 28)} insp/min", f"SpO2: {r.randint(91, 100)}%",
        "Assessment and Plan",
        f"{p.history}, admitted with {adm.reason}.",
        f"# {adm.reason.split(',')[0].upper()}: {' '.join(r.sample(dx['plan'], 2))}",
        f"# FEN: replete lytes, {r.choice(['NPO', 'cardiac diet', 'TF at goal', 'advance diet'])}",
        "# PPx: SC heparin, PPI, bowel regimen",
        f"# Code: {p.code}",
        f"# Dispo: {'call out to floor' if sev == 0 else 'ICU for now'}",
    ])
    return r.choice(["Physician Resident Progress Note", "Intensivist Note", "Physician Attending Progress Note"]), text


def _radiology(r: random.Random, p: _Patient, adm: _Admission, sev: int, when: datetime) -> tuple[str, str]:
    study = DIAGNOSES[adm.dx]["study"]
    title, indication, impression = {
        "chest": ("CHEST (PORTABLE AP)", "eval for infiltrate, effusion",
                  r.choice(["Interval improvement in bibasilar opacities.", "No acute cardiopulmonary process.",
                            "Small bilateral pleural effusions, mild pulmonary edema.", "RLL opacity c/w pneumonia.",
                            "ET tube 4 cm above the carina. Lines in standard position."])),
        "head": ("CT HEAD W/O CONTRAST", "eval for bleed, change in mental status",
                 r.choice(["No acute intracranial hemorrhage.", "Evolving L MCA territory infarct, no hemorrhage.",
                           "Chronic small vessel ischemic disease, no acute process."])),
        "abdomen": ("CT ABDOMEN W/CONTRAST", "eval for source of pain, bleed",
                    r.choice(["Peripancreatic fat stranding c/w pancreatitis, no necrosis.",
                              "No active extravasation.", "Cholelithiasis without cholecystitis."])),
    }[study]
    text = "\n".join([
        f"{_d(when.date())} {when.hour % 12 or 12}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}",
        f" {title:<50}Clip # [**Clip Number (Radiology) {r.randint(10000, 99999)}**]",
        f" Reason: {indication}",
        f" Admitting Diagnosis: {adm.reason.split(',')[0].upper()}",
        " " + "_" * 78,
        "                                 FINAL REPORT",
        f" INDICATION: {p.age}-year-old {'man' if p.sex == 'M' else 'woman'} with {adm.reason}, {indication}.",
        f" COMPARISON: {_d((when - timedelta(days=r.randint(1, 400))).date())}.",
        f" FINDINGS: {impression} "
        + r.choice(["Heart size is normal.", "Stable cardiomegaly.", "Osseous structures unremarkable."]),
        f" IMPRESSION: {impression}",
    ])
    return title, text


def _ecg(r: random.Random, p: _Patient, adm: _Admission, sev: int, when: datetime) -> tuple[str, str]:
    rhythm = {"AFib": "Atrial fibrillation with rapid ventricular response.", "ST": "Sinus tachycardia.",
              "SB": "Sinus bradycardia."}.get(p.rhythm, "Sinus rhythm.")
    earlier = _d((when - timedelta(days=r.randint(1, 300))).date())
    text = " ".join([
        rhythm,
        r.choice(["Left axis deviation.", "Normal axis.", "Left anterior fascicular block."]),
        r.choice(["Non-specific ST-T wave changes.", "Poor R wave progression.", "Low voltage in limb leads."]),
        r.choice([f"Compared to the previous tracing of {earlier} no significant change.",
                  "No previous tracing available for comparison."]),
    ])
    return "Report", text


def _discharge(r: random.Random, p: _Patient, adm: _Admission, sev: int, when: datetime) -> tuple[str, str]:
    dx = DIAGNOSES[adm.dx]
    text = "\n".join([
        f"Admission Date:  {_d(adm.admit.date())}              Discharge Date:   {_d(when.date())}",
        "",
        f"Date of Birth:  {_d(p.dob)}             Sex:   {p.sex}",
        "",
        f"Service: {dx['service']}",
        "",
        "Allergies:", p.allergies, "",
        "Chief Complaint:", adm.reason, "",
        "History of Present Illness:",
        f"{p.history}, who presented to [**Hospital1 18**] from {adm.source} with {adm.reason}.", "",
        "Past Medical History:", *[f"- {x}" for x in p.pmh], "",
        "Brief Hospital Course:",
        f"Pt was admitted to the [**Hospital Unit Name 153**]. {' '.join(r.sample(dx['plan'], 3))}",
        "", "Discharge Disposition:", r.choice(["Home With Service", "Extended Care", "Home"]),
        "", "Discharge Diagnosis:", adm.reason, "", "Discharge Condition:", "stable", "",
        f"Followup Instructions: Dr. [**Last Name (STitle) {r.randint(100, 9999)}**] in 1-2 weeks.",
    ])
    return "Report", text


OTHER_FUNCS = {"Physician ": _physician, "Radiology": _radiology, "ECG": _ecg, "Discharge summary": _discharge}


# ---------------------------------------------------------------------------------------------
# The corpus


def _row(subject_id: int, hadm_id: int | None, when: datetime | None, chartdate: date, category: str,
         description: str, cgid: int | None, text: str, store_delay: int | None) -> dict[str, Any]:
    return {
        "ROW_ID": 0, "SUBJECT_ID": subject_id, "HADM_ID": hadm_id, "CHARTDATE": chartdate.isoformat(),
        "CHARTTIME": when.strftime("%Y-%m-%d %H:%M:%S") if when else None,
        "STORETIME": (when + timedelta(minutes=store_delay)).strftime("%Y-%m-%d %H:%M:%S")
        if when and store_delay is not None else None,
        "CATEGORY": category, "DESCRIPTION": description, "CGID": cgid, "ISERROR": None, "TEXT": text,
    }


def generate_rows(cfg: SyntheticParams) -> list[dict[str, Any]]:
    """Return the corpus as NOTEEVENTS rows (dicts keyed by the stage's `COLUMNS`, None for an empty cell).

    A function of `cfg` alone: the same config gives the same rows. ROW_IDs are unique and increasing
    in list order; rows are grouped by patient and ordered by time within an admission. Exactly
    `cfg.error_rows` nursing rows have ISERROR=1 and exactly `cfg.blank_rows` nursing rows have blank TEXT.
    """
    r = random.Random(cfg.seed)
    subject_ids = r.sample(range(100, 100_000), cfg.patients)
    n_adm = [r.randint(*cfg.admissions_per_patient) for _ in subject_ids]
    hadm_ids = iter(r.sample(range(100_000, 200_000), sum(n_adm)))
    caregivers = r.sample(range(14_000, 21_000), 120)
    rows: list[dict[str, Any]] = []
    for subject_id, k in zip(subject_ids, n_adm, strict=True):
        rows.extend(_patient_rows(r, cfg, subject_id, [next(hadm_ids) for _ in range(k)], caregivers))
    _spoil_some(r, cfg, rows)
    row_id = r.randint(1, 5000)
    for row in rows:
        row["ROW_ID"] = row_id
        row_id += r.randint(1, 3)
    return rows


def _patient_rows(r: random.Random, cfg: SyntheticParams, subject_id: int, hadm_ids: list[int],
                  caregivers: list[int]) -> list[dict[str, Any]]:
    """Every row of one patient: admissions in time order, each its nursing notes and other notes by time."""
    first = datetime(r.randint(2100, 2190), r.randint(1, 12), r.randint(1, 28), r.randint(0, 23), r.randint(0, 59))
    p = _make_patient(r, subject_id, first)
    admit, rows = first, []
    for hadm_id in hadm_ids:
        adm = _new_admission(r, cfg, p, hadm_id, admit, caregivers)
        adm_rows = _nursing_rows(r, cfg, p, adm)
        end = datetime.strptime(adm_rows[-1]["CHARTTIME"], "%Y-%m-%d %H:%M:%S")
        adm_rows += _other_rows(r, cfg, p, adm, end, caregivers)
        adm_rows.sort(key=lambda row: (row["CHARTTIME"] or row["CHARTDATE"] + " 23:59:59"))
        rows.extend(adm_rows)
        admit = end + timedelta(days=r.randint(20, 400), hours=r.randint(-12, 12))
    return rows


def _new_admission(r: random.Random, cfg: SyntheticParams, p: _Patient, hadm_id: int, admit: datetime,
                   caregivers: list[int]) -> _Admission:
    """An admission of `p` starting at `admit`: its diagnosis, source, lines, nurses and severity per note."""
    dx = p.dx if r.random() < 0.7 else r.choice(list(DIAGNOSES))
    n = r.randint(*cfg.notes_per_admission)
    return _Admission(
        hadm_id=hadm_id, dx=dx, reason=r.choice(DIAGNOSES[dx]["reason"]), admit=admit,
        source=r.choice(["the ED", "[**Hospital1 18**] ED", "the OR" if dx == "cabg" else "the floor",
                         "OSH [**Hospital 1474**]", f"[**Hospital1 {r.randint(2, 99)}**]"]),
        lines=r.choice(["PIV x2", "R IJ TLC, PIV x1", "L radial a-line, R IJ CVL", "PICC RUE, PIV x1",
                        "L SC TLC, R radial a-line"]),
        severities=_trajectory(r, DIAGNOSES[dx]["start"], n), nurses=r.sample(caregivers, 6),
    )


def _nursing_rows(r: random.Random, cfg: SyntheticParams, p: _Patient, adm: _Admission) -> list[dict[str, Any]]:
    """One nursing progress note per shift worked (a shift is skipped now and then), in time order."""
    rows = []
    carried: dict[str, tuple[Any, list[str]]] = {}
    shift = 0 if 7 <= adm.admit.hour < 19 else 1
    day0 = adm.admit.date() - timedelta(days=1 if adm.admit.hour < 7 else 0)
    for i in range(len(adm.severities)):
        night = shift % 2 == 1
        base = datetime.combine(day0 + timedelta(days=shift // 2), datetime.min.time())
        when = base + (timedelta(hours=r.randint(28, 30), minutes=r.randint(0, 59)) if night
                       else timedelta(hours=r.randint(16, 18), minutes=r.randint(0, 59)))
        if i == 0 and when < adm.admit:
            when = adm.admit + timedelta(minutes=r.randint(40, 90))
        text = _nursing_note(r, cfg, p, adm, i, night, carried)
        desc = "Report" if p.category == "Nursing/other" else "Nursing Progress Note"
        rows.append(_row(p.subject_id, adm.hadm_id, when, when.date(), p.category, desc,
                         r.choice(adm.nurses), text, r.randint(2, 45)))
        shift += 1 if r.random() < 0.75 else 2
    return rows


def _other_rows(r: random.Random, cfg: SyntheticParams, p: _Patient, adm: _Admission, end: datetime,
                caregivers: list[int]) -> list[dict[str, Any]]:
    """Physician, Radiology, ECG and (at most one) Discharge summary rows, about `other_category_share` of all."""
    n = len(adm.severities)
    expected = n * (cfg.other_category_share / (1.0 - cfg.other_category_share))
    n_other = int(expected) + (r.random() < expected - int(expected))
    rows, has_summary = [], False
    for _ in range(n_other):
        cat = r.choices(OTHER_CATEGORIES, OTHER_WEIGHTS)[0]
        if cat == "Discharge summary" and has_summary:
            cat = "Radiology"
        if cat == "Discharge summary":
            has_summary = True
            when = end + timedelta(days=r.randint(1, 3))
            desc, text = _discharge(r, p, adm, 0, when)
            rows.append(_row(p.subject_id, adm.hadm_id, None, when.date(), cat, desc, None, text, None))
            continue
        i = r.randrange(n)
        when = (adm.admit + (end - adm.admit) * r.random()).replace(second=0, microsecond=0)
        desc, text = OTHER_FUNCS[cat](r, p, adm, adm.severities[i], when)
        hadm = None if cat == "ECG" and r.random() < 0.2 else adm.hadm_id  # outpatient-style rows
        store = r.randint(5, 120) if cat == "Physician " else None
        cgid = r.choice(caregivers) if cat == "Physician " else None
        rows.append(_row(p.subject_id, hadm, when, when.date(), cat, desc, cgid, text, store))
    return rows


def _spoil_some(r: random.Random, cfg: SyntheticParams, rows: list[dict[str, Any]]) -> None:
    """Flag `cfg.error_rows` nursing rows ISERROR=1 and blank the TEXT of `cfg.blank_rows` others, in place."""
    nursing = [row for row in rows if row["CATEGORY"] in NURSING_CATEGORIES]
    if cfg.error_rows + cfg.blank_rows > len(nursing):
        raise ParamsError(f"params.yaml: synthetic.error_rows: {cfg.error_rows} error rows and {cfg.blank_rows} "
                          f"blank rows need more than the {len(nursing)} nursing notes generated")
    picked = r.sample(nursing, cfg.error_rows + cfg.blank_rows)
    for row in picked[:cfg.error_rows]:
        row["ISERROR"] = 1
    for row in picked[cfg.error_rows:]:
        row["TEXT"] = r.choice(["", " ", "\n \n", "   "])
        row["DESCRIPTION"] = "Generic Note"


def corpus_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts that describe a corpus: rows, patients, admissions, nursing notes (all / usable) and their mean words."""
    nursing = [row for row in rows if row["CATEGORY"] in NURSING_CATEGORIES]
    usable = [row for row in nursing if not row["ISERROR"] and row["TEXT"].strip()]
    return {
        "rows": len(rows),
        "patients": len({row["SUBJECT_ID"] for row in rows}),
        "admissions": len({row["HADM_ID"] for row in rows if row["HADM_ID"] is not None}),
        "nursing_notes": len(nursing),
        "nursing_notes_usable": len(usable),
        "other_notes": len(rows) - len(nursing),
        "error_rows": sum(1 for row in rows if row["ISERROR"]),
        "nursing_words_mean": round(sum(_words(row["TEXT"]) for row in usable) / max(1, len(usable)), 1),
    }
