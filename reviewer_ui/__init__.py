"""The reviewer blueprint: queue, appeal page, decisions, audit, dashboard, admin."""

from flask import Blueprint

bp = Blueprint("reviewer", __name__, template_folder="templates")
