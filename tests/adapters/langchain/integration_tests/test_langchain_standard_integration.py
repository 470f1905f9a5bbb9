"""LangChain's standard integration tests for RoutooChat (langchain-tests ChatModelIntegrationTests).

They run offline against routoo.testing's scripted litellm provider (in the subclass that
takes tool arguments from the prompt), with a predictor saved to disk and loaded by path.

Skipped standard tests, and why:

- test_image_inputs, test_image_tool_message, test_pdf_inputs, test_pdf_tool_message,
  test_audio_inputs, test_anthropic_inputs: the scripted models take no such inputs (and
  these tests download their media, which the offline suite cannot).
- test_stream_time: needs recorded VCR cassettes of a real provider.
- test_usage_metadata's detailed token kinds (audio, reasoning, cache): not reported.
"""

from __future__ import annotations

from conftest import RoutooChatStandardSetup
from langchain_integration_support import register_prompt_reading_provider
from langchain_tests.integration_tests import ChatModelIntegrationTests


class TestRoutooChatStandardIntegration(RoutooChatStandardSetup, ChatModelIntegrationTests):
    register_provider = staticmethod(register_prompt_reading_provider)

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "scripted/large"
