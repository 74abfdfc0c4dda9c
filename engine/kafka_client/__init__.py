"""The engine's own Kafka clients (aiokafka, outside Faust): whole-topic readers, topic
creation, the partition hash, reference data."""
