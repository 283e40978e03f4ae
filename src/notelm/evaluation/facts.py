"""Clinical facts a nursing note states, and how a completion's facts stand against the note and the chart.

A fact is a (kind, value) pair: `("BP", "125-149/57-70")`, `("SpO2", "94-99%")`, `("O2 device", "NC")`,
`("drip", "propofol 40 mcg/kg/min")`, `("line", "foley")` — or, for a line/tube/drain or a finding that the
text denies or removes, `("line", "no foley")`. `extract` finds:

- vital signs with their values: BP, HR, RR, SpO2 and temperature (ranges such as `HR 70-89` kept whole);
- oxygen: the delivery device (RA, NC, face mask, high flow, NRB, BiPAP, CPAP, vent), its flow in L/min and FiO2;
- drips (`<drug> gtt|drip|infusion [at] <dose> <unit>`) and medications of MEDICATIONS given with a dose;
- lines, tubes and drains of LINES, and findings of FINDINGS, each present or negated.

CareVue-style (`Neuro: … CV: …`) and MetaVision-style (`Assessment: / Action: / Response: / Plan:`) notes read
alike: section headers are not needed. What it misses is MISSES (the report prints it). Values are compared as
written (lower-cased, spaces dropped): `HR 88` and `HR 88 bpm` agree, `HR 88` and `HR 70-89` do not.

Why hand-written rules: medspaCy (the field's library for sections and ConText negation) 1.3 pins spaCy 3.7,
whose thinc needs numpy < 2, which pandas 3 here cannot share; nursing vital-sign shorthand needs value
patterns of its own in any case, and the negation below is NegEx/ConText's idea (a cue negates the targets
after it — or, for `d/c'd`, `removed`, before it — within its clause) with a few cues.

`classify` sorts a completion's facts against its reference (the note's real rest) and its chart (the prompt and
the patient's earlier notes): matched, contradicted (the reference states the same kind with another value),
carried (only the chart states it: carried forward, maybe stale) or invented (stated nowhere).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from notelm.config.names import FACT_CLASSES

Fact = tuple[str, str]
MISSES = ("vital signs written without their abbreviation or with words between it and the value (`afebrile`, "
          "`sats in the 90s`, `BP improved to 100/60`), drugs outside MEDICATIONS given without `gtt`/`drip`, doses "
          "in words, lines and findings outside LINES and FINDINGS, ventilator settings other than FiO2, lab values, "
          "and negation outside the clause (sentence or comma-separated phrase) of its cue; values are compared as "
          "written, so `HR 88` and `HR 70-89` differ")

_RANGE = r"\d{1,3}(?:\.\d)?(?:\s*-\s*\d{1,3}(?:\.\d)?)?"
VITALS: dict[str, re.Pattern] = {  # kind -> pattern whose group 1 is the value
    "BP": re.compile(r"\b(?:N?BP|ABP|SBP|blood pressure)\s*:?\s*(?:of\s*)?(\d{2,3}(?:\s*-\s*\d{2,3})?\s*/\s*\d{2,3}"
                     r"(?:\s*-\s*\d{2,3})?)", re.I),
    "HR": re.compile(rf"\b(?:HR|heart rate|pulse)\s*:?\s*(?:of\s*)?({_RANGE})(?!\d|\.\d|\s*/)", re.I),
    "RR": re.compile(rf"\b(?:RR|resp(?:iratory)? rate)\s*:?\s*(?:of\s*)?({_RANGE})(?!\d|\.\d)", re.I),
    "SpO2": re.compile(rf"\b(?:SpO2|SaO2|O2 sats?|sats?)\s*:?\s*(?:of\s*)?({_RANGE})(?!\d|\.\d)\s*%?", re.I),
    "temp": re.compile(r"\b(?:T|Tmax|Temp|temperature)\s*:?\s*(?:of\s*)?(\d{2,3}\.\d)\b", re.I),
}
O2_DEVICES: dict[str, str] = {  # what a note writes -> the device's name
    "ra": "RA", "room air": "RA", "nc": "NC", "nasal cannula": "NC", "face mask": "face mask", "fm": "face mask",
    "shovel mask": "face mask", "venti mask": "face mask", "high flow": "high flow", "hfnc": "high flow",
    "nrb": "NRB", "non-rebreather": "NRB", "bipap": "BiPAP", "cpap": "CPAP", "vent": "vent", "intubated": "vent",
    "trach mask": "trach mask",
}
O2_FLOW = re.compile(r"\b(\d{1,2}(?:\.\d)?)\s*L(?:pm|/min)?\b(?=\s*(?:NC|nasal|O2|via|by|of|face|FM|high|shovel|$|[.,;]))",
                     re.I)
FIO2 = re.compile(r"\bFiO2\s*:?\s*(?:of\s*)?(\d{2,3})\s*%?|\b(\d{2,3})\s*%\s*(?:FiO2|face mask|FM|high flow|"
                  r"shovel|venti|neb)\b|\b(?:neb|face mask|FM|shovel mask|venti mask)\s+(\d{2,3})\s*%", re.I)
DRIP = re.compile(r"\b([A-Za-z][A-Za-z-]{2,})\s+(?:gtt|drip|infusion)\s*(?:(?:started|running|infusing|increased|"
                  r"decreased|titrated|weaned|restarted)\s*(?:to\s*)?)?(?:at\s*|@\s*)?(?:(\d+(?:\.\d+)?)\s*"
                  r"(mcg/kg/min|mcg/min|mg/hr|mg/min|units?/hr|u/hr|mcg/hr|ml/hr|cc/hr|mg/kg/hr))?", re.I)
MEDICATIONS = (  # given with a dose (`morphine 2 mg IV`); drips are recognised by gtt/drip whatever the drug
    "acetaminophen tylenol oxycodone percocet morphine dilaudid hydromorphone fentanyl ativan lorazepam haldol "
    "haloperidol versed midazolam lasix furosemide metoprolol lopressor labetalol hydralazine diltiazem dilt "
    "amiodarone digoxin heparin lovenox enoxaparin coumadin warfarin insulin kcl potassium magnesium calcium "
    "vancomycin zosyn cefepime ceftriaxone azithromycin levofloxacin flagyl protonix pantoprazole zofran "
    "ondansetron reglan colace senna lactulose albuterol atrovent nebs propofol precedex levophed neo "
    "nicardipine nitro ntg vasopressin dopamine dobutamine ns lr albumin prednisone solumedrol"
).split()
MED_DOSE = re.compile(rf"\b({'|'.join(MEDICATIONS)})\s+(\d+(?:\.\d+)?)\s*(mg|mcg|g|units?|u|meq|ml|cc|tabs?)\b",
                      re.I)
LINES: dict[str, str] = {  # what a note writes -> the line, tube or drain
    "piv": "PIV", "tlc": "central line", "central line": "central line", "cvl": "central line", "picc": "PICC",
    "a-line": "arterial line", "art line": "arterial line", "arterial line": "arterial line",
    "foley": "foley", "ogt": "OGT", "ngt": "NGT", "ett": "ETT", "trach": "trach", "chest tube": "chest tube",
    "jp drain": "JP drain", "rectal tube": "rectal tube", "dobhoff": "dobhoff", "hd line": "dialysis line",
    "peg": "PEG",
}
FINDINGS = ("edema", "bm", "flatus", "ectopy", "pvcs", "vea", "secretions", "pain", "nausea", "vomiting", "bleeding",
            "melena", "chest pain", "sob", "wheezes", "crackles", "rhonchi")
NEGATE_AFTER = re.compile(r"\b(?:no|not|denies|denied|without|negative for|absent|off)\b", re.I)  # cue, then target
NEGATE_BEFORE = re.compile(r"\b(?:d/c'?d|dc'?d|discontinued|removed|pulled|out|absent|none)\b", re.I)  # target, cue
_CLAUSE = re.compile(r"[.;,:!?]\s|\band\b|\bbut\b")  # negation stops at a clause's end


def _norm(value: str) -> str:
    return re.sub(r"\s+", "", value).lower()


def _terms(names: Iterable[str]) -> re.Pattern:
    alternatives = sorted(names, key=len, reverse=True)  # longest first: `chest pain` before `pain`
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in alternatives) + r")(?![\w-])", re.I)


_LINE_TERMS, _FINDING_TERMS, _DEVICE_TERMS = _terms(LINES), _terms(FINDINGS), _terms(O2_DEVICES)


def _negated(text: str, start: int, end: int) -> bool:
    """Whether a cue in the target's clause negates the target at text[start:end] (NegEx-style scope)."""
    clause_start = max((m.end() for m in _CLAUSE.finditer(text, 0, start)), default=0)
    after = _CLAUSE.search(text, end)
    clause_end = after.start() if after else len(text)
    return bool(NEGATE_AFTER.search(text, clause_start, start) or NEGATE_BEFORE.search(text, end, clause_end))


@functools.lru_cache(maxsize=4096)  # evaluate extracts each reference and chart once per system, then again for the totals
def extract(text: str) -> frozenset[Fact]:
    """The facts `text` states (see the module's docstring for what is found and what is missed)."""
    facts: set[Fact] = set()
    for kind, pattern in VITALS.items():
        facts.update((kind, _norm(m.group(1))) for m in pattern.finditer(text))
    facts.update(("O2 device", O2_DEVICES[m.group(1).lower()]) for m in _DEVICE_TERMS.finditer(text)
                 if not _negated(text, m.start(), m.end()))
    facts.update(("O2 flow", _norm(m.group(1)) + "l") for m in O2_FLOW.finditer(text))
    facts.update(("FiO2", next(g for g in m.groups() if g) + "%") for m in FIO2.finditer(text))
    for m in DRIP.finditer(text):
        dose = f" {_norm(m.group(2) + m.group(3))}" if m.group(2) else ""
        facts.add(("drip", m.group(1).lower() + dose))
    facts.update(("medication", f"{m.group(1).lower()} {_norm(m.group(2) + m.group(3))}") for m in MED_DOSE.finditer(text))
    for kind, pattern, names in (("line", _LINE_TERMS, LINES), ("finding", _FINDING_TERMS, None)):
        for m in pattern.finditer(text):
            name = names[m.group(1).lower()] if names else m.group(1).lower()
            facts.add((kind, f"no {name}" if _negated(text, m.start(), m.end()) else name))
    return frozenset(facts)


def _subject(fact: Fact) -> str:
    """What a fact is about, so that two values of it contradict each other: the kind for a vital sign or
    oxygen, the drug for a drip or medication, the line or finding whatever its negation."""
    kind, value = fact
    if kind in ("drip", "medication"):
        return f"{kind}:{value.split()[0]}"
    if kind in ("line", "finding"):
        return f"{kind}:{value.removeprefix('no ')}"
    return kind


@dataclass(frozen=True)
class Fidelity:
    """How many facts a completion wrote, and how many of them fell in each of names.FACT_CLASSES."""

    written: int
    matched: int
    contradicted: int
    carried: int
    invented: int


def classify(written: frozenset[Fact], reference: frozenset[Fact], chart: frozenset[Fact]) -> Fidelity:
    """Sort the `written` facts: matched (the reference states it), contradicted (the reference states the same
    subject with another value), carried (not in the reference, but the chart states it) or invented (neither)."""
    subjects = {_subject(f) for f in reference}
    counts = dict.fromkeys(FACT_CLASSES, 0)
    for fact in written:
        kind = ("matched" if fact in reference else "contradicted" if _subject(fact) in subjects
                else "carried" if fact in chart else "invented")
        counts[kind] += 1
    return Fidelity(len(written), **counts)
