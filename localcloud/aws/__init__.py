"""The AWS endpoint (a moto server) and what is done to it: CloudFormation's create (provision), a
service failing in one region (faults), and the count of a region's AWS calls."""
