"""Lambda as the local stack plays it: the runtime around the real handlers, and the event source
mappings of a DynamoDB stream and of an SQS queue. (`lambda` is a Python keyword.)"""
