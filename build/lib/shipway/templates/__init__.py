"""Templates: new projects from shipway's service template, their updates, and the service checker.

    create_project(name, answers, directory)   `shipway new`: a project from the template
    update_project(path)                       `shipway update`: a newer template's changes, merged
    check_project(path)                        `shipway check`: what is wrong with a service

The template itself is package data (`template/`, a copier template); `source` turns it into
the versioned git repository copier's updates need. Heavy libraries (torch, xgboost...) are
imported only by the generated projects, never here.
"""

from shipway.errors import TemplateError
from shipway.templates.check import Finding, Report, check_project
from shipway.templates.choices import QUESTIONS, Choice, Question
from shipway.templates.scaffold import Scaffold, create_project, missing_requirements, train_project
from shipway.templates.source import TEMPLATE_VERSION
from shipway.templates.update import Update, update_project

__all__ = [
    "QUESTIONS",
    "TEMPLATE_VERSION",
    "Choice",
    "Finding",
    "Question",
    "Report",
    "Scaffold",
    "TemplateError",
    "Update",
    "check_project",
    "create_project",
    "missing_requirements",
    "train_project",
    "update_project",
]
