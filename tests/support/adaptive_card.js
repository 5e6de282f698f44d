// Microsoft's Adaptive Cards library (npm adaptivecards, its browser bundle) reads a card from stdin and prints
// what it could not take, one JSON list: invalid property values, unknown element types, a wrong card version.
// tests/support/adaptive_card.py runs it; `make setup` installs the library (package.json).
const AC = require("adaptivecards/dist/adaptivecards.js");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const json = JSON.parse(input);
  const context = new AC.SerializationContext();
  const card = new AC.AdaptiveCard();
  card.parse(json, context);
  const problems = [];
  for (let i = 0; i < context.eventCount; i++) {
    const event = context.getEventAt(i);
    problems.push(`${AC.ValidationEvent[event.event]}: ${event.message}`);
  }
  const validation = card.validateProperties();
  for (const event of validation.validationEvents) {
    problems.push(`${AC.ValidationEvent[event.event]}: ${event.message}`);
  }
  process.stdout.write(JSON.stringify({ problems, version: card.version ? card.version.toString() : null }) + "\n");
});
