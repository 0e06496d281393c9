"""Evaluation: benchmark suites (published layouts, any MCQ file, a held-out synthetic set), scoring, the report."""
