"""What moto does not do for DynamoDB: reading a table's stream, and global-table replication."""
