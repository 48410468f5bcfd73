"""recsaver: LLM reasoning for personalized recommendation, and Rec-SAVER evaluation of it."""

__version__ = "0.1.0"
