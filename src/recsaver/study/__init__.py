"""Human alignment study (paper Sections 3.2 and 5.1): items for raters, the rater web app, import, analysis.

`create_study` samples items balanced by gold rating into a SQLite study database;
`create_app` is the server-rendered rater app over it; `import_csv` loads ratings collected
elsewhere; `analyze` / `write_report` compute Tables 6-9 and 13 and write the report.
"""

from .analysis import AnalysisConfig, analyze
from .answers import DEFINITIONS, ERROR_TYPES, Answer, AnswerError, parse_answer_fields
from .create import CreateConfig, create_study, redact_prediction
from .db import StudyDB
from .importer import import_csv

__all__ = [
    "AnalysisConfig", "Answer", "AnswerError", "CreateConfig", "DEFINITIONS", "ERROR_TYPES", "StudyDB",
    "analyze", "create_study", "import_csv", "parse_answer_fields", "redact_prediction",
]
