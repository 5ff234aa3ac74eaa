// Compile an MJML file with the reference compiler (mjml), then count what the caniemail
// database (through doiuse-email) says the clients below do not support, in its output and
// in the HTML file given (ours, compiled by MRML). Prints JSON.
const fs = require("fs");
const mjml2html = require("mjml");
const { doIUseEmail } = require("@jsx-email/doiuse-email");

const [source, ours] = process.argv.slice(2);
const clients = ["gmail.*", "outlook.*", "apple-mail.*", "yahoo.*", "samsung-email.*"];

function count(html) {
  const result = doIUseEmail(html, { emailClients: clients });
  return { errors: (result.errors || []).length, warnings: (result.warnings || []).length,
           first: (result.errors || []).slice(0, 5) };
}

(async () => {
  const reference = await mjml2html(fs.readFileSync(source, "utf8"), { validationLevel: "soft" });
  console.log(JSON.stringify({ reference: count(reference.html), ours: count(fs.readFileSync(ours, "utf8")) }));
})();
