from tests.support.kafka_fixtures import kafka_broker, kafka_topic, running_kafka_broker

__all__ = ["kafka_broker", "kafka_topic", "running_kafka_broker"]
