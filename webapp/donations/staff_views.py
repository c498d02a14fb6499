"""(placeholder, being written)"""

from flask import Blueprint

bp = Blueprint("donations_staff", __name__)
