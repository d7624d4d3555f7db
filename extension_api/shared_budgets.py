"""The API's and pages' rate limits shared by every process on one PostgreSQL database:
the budgets themselves are ``core.shared_budgets`` (the SMTP adapter uses them too);
this name keeps working for the API's code."""

from core.shared_budgets import SharedBudgets, close_all, for_database

__all__ = ["SharedBudgets", "close_all", "for_database"]
