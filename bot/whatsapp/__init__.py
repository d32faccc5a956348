"""WhatsApp Cloud API: a channel adapter over pywa_async and the shared gateway (webhooks only).

`runner` has what `tonebot run whatsapp` needs: make_gateway, webhook_reader and run_webhook.
"""
