from flask import Flask, request

app = Flask(__name__)


@app.route("/debug/eval")
def debug_eval():
    # Evaluates arbitrary Python sent by the caller: remote code execution.
    return str(eval(request.args["code"]))
