"""Words and pictures about the numbers: Markdown tables, labels, the report's sections and charts. The report
stage imports every module here (one folder dep), no other stage imports any, so rewording a label or
restyling a chart re-runs only the report; the consumers (app, compare, plan, readme) use them too.
"""
