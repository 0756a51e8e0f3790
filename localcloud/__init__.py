"""The local two-region stack: AWS's moving parts played on one machine around the real handlers.

moto holds both regions' tables and the Route 53 configuration; everything moto does not do
(API Gateway's HTTP and WebSocket APIs, the stream event source mapping, global-table
replication, Route 53's health checking and latency routing) is played here, small and faithful
to what AWS documents. Routes, functions and environment come from template.yaml, read by
stack_definition. One folder per AWS service played, and stack/ for the machinery (docs/local.md).
"""
