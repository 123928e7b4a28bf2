"""Fault injection rules set through the control API."""

import re
import threading


class Faults:
    """'The next N requests matching METHOD and a path regex' get a status, a delay, or a dropped connection;
    'exec streams whose command matches a regex' are cut after K bytes of stdout."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.exec_rules = []

    @staticmethod
    def _validate(rule):
        rule = dict(rule)
        rule.setdefault("method", "*")
        rule.setdefault("path", ".*")
        rule.setdefault("count", 1)
        re.compile(rule["path"])
        if "status" not in rule and "delay" not in rule and rule.get("action") != "close":
            raise ValueError("a fault needs status, delay or action=close")
        if rule.get("count") is not None and int(rule["count"]) < 1:
            raise ValueError("count must be >= 1 or null (forever)")
        return rule

    def add(self, rule):
        rule = self._validate(rule)
        with self.lock:
            self.rules.append(rule)
        return rule

    def add_exec(self, rule):
        rule = dict(rule)
        rule.setdefault("command", ".*")
        rule.setdefault("count", 1)
        re.compile(rule["command"])
        rule["cutAfterBytes"] = int(rule["cutAfterBytes"])
        with self.lock:
            self.exec_rules.append(rule)
        return rule

    @staticmethod
    def _consume(rules, rule):
        if rule.get("count") is not None:
            rule["count"] = int(rule["count"]) - 1
            if rule["count"] <= 0:
                rules.remove(rule)

    def take(self, method, target):
        """The first rule matching this request (its count is used up), or None."""
        with self.lock:
            for rule in self.rules:
                if rule["method"] in ("*", method) and re.search(rule["path"], target):
                    self._consume(self.rules, rule)
                    return dict(rule)
        return None

    def take_exec(self, argv):
        command = " ".join(argv)
        with self.lock:
            for rule in self.exec_rules:
                if re.search(rule["command"], command):
                    self._consume(self.exec_rules, rule)
                    return rule["cutAfterBytes"]
        return None

    def clear(self):
        with self.lock:
            self.rules.clear()
            self.exec_rules.clear()

    def describe(self):
        with self.lock:
            return {"requests": [dict(r) for r in self.rules], "exec": [dict(r) for r in self.exec_rules]}
