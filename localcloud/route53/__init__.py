"""What moto does not do for Route 53: health checking, and latency routing by a client's location."""
