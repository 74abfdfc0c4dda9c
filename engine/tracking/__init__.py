"""Performance tracking (行政问效): how well departments answer the alerts they are sent.

``store`` keeps the records of an alert's life as the topics mean them, ``scores`` turns them into
scorecards (plain Python, no broker), ``service`` is ``yujing track`` (read the topics, publish
scorecards and gauges), ``report`` is ``yujing report`` (a readable daily report), and ``cli``
holds the two commands; ``engine.kafka_client.whole_topics`` reads whole topics.
"""
