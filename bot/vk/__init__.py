"""VK communities: a channel adapter for vkbottle over the shared gateway.

settings   VK_* from the environment          inbound   VK events → IncomingMessage
client     vkbottle's API, paced, fail-fast   outbound  messages.send, keyboards, VK's errors
longpoll   Bots Long Poll                     sending   sends pooled into execute calls
webhook    the Callback API's reader          runner    make_gateway, run_polling, webhook_reader
"""

from bot.vk.runner import make_gateway, run_polling, webhook_reader
from bot.vk.settings import VkConfigError, VkSettings

__all__ = ["VkConfigError", "VkSettings", "make_gateway", "run_polling", "webhook_reader"]
