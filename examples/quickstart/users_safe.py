# SAFE twin of users_sqli.py: the name is bound as a query parameter.
from flask import Flask, request
import sqlite3

app = Flask(__name__)


@app.route("/users")
def find_user():
    name = request.args.get("name", "")
    db = sqlite3.connect("app.db")
    rows = db.execute("SELECT id, email FROM users WHERE name = ?", (name,)).fetchall()
    return {"users": rows}
