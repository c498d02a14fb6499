"""(placeholder, being written)"""

from flask import Blueprint

bp = Blueprint("donor", __name__)
