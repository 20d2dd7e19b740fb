"""Local AWS endpoint for video-stats: moto server + a Docker-free DynamoDB Streams ->
Lambda event source mapping engine + a control API. See README.md in this directory."""
