"""API Gateway as the local stack plays it: the HTTP API, the WebSocket API with `@connections`, the
Lambda REQUEST authorizer, the events a Lambda proxy integration sends, and the AWS service actions."""
