"""Templates: new projects from shipway's service template, and their updates.

    create_project(name, answers, directory)   `shipway new`: a project from the template
    update_project(path)                       `shipway update`: a newer template's changes, merged

The service checker (`shipway check`) lives in shipway.validation.service_check.

The template itself is package data (`template/`, a copier template); `source` turns it into
the versioned git repository copier's updates need. Heavy libraries (torch, xgboost...) are
imported only by the generated projects, never here.
"""

from shipway.errors import TemplateError
from shipway.templates.choices import QUESTIONS, Choice, Question
from shipway.templates.scaffold import Scaffold, create_project, missing_requirements, train_project
from shipway.templates.source import TEMPLATE_VERSION
from shipway.templates.update import Update, update_project

__all__ = [
    "QUESTIONS",
    "TEMPLATE_VERSION",
    "Choice",
    "Question",
    "Scaffold",
    "TemplateError",
    "Update",
    "create_project",
    "missing_requirements",
    "train_project",
    "update_project",
]
