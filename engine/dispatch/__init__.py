"""Dispatch (联动指挥): alerts routed to departments as work orders, escalated when nobody
acknowledges them in time.

``routing`` decides who gets an alert, ``grouping`` gathers alerts of one place into incidents,
``core`` keeps the orders and their timers (plain Python, no broker), ``service`` moves records
between Kafka and the core, ``cli`` is ``yujing dispatch``.
"""
