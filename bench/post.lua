-- wrk script: POST short customer messages as JSON, rotating through a few.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
  '{"text": "I am still waiting on my card?"}',
  '{"text": "How do I top up my account with cash?"}',
  '{"text": "My card payment was declined at the shop"}',
  '{"text": "Why was I charged a fee for a transfer?"}',
  '{"text": "I think someone stole my card, please block it"}',
  '{"text": "What exchange rate do you use for euros?"}',
  '{"text": "Can I change my PIN at an ATM?"}',
  '{"text": "The app says my transfer is pending"}',
}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
end
