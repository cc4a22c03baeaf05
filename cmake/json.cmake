# nlohmann-json (Debian nlohmann-json3-dev 3.11): config.json, safetensors headers, tokenizer.json.
find_package(nlohmann_json 3.10 CONFIG REQUIRED)
