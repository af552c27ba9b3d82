// Writes MJML's own component list, each component's allowed attributes and the children each
// tag may hold (mjml-validator's dependency table) as JSON on stdout. dripengine's template check
// (dripengine/templates/mjml_rules.py) reads the result, dripengine/templates/mjml_spec.json,
// instead of a hand-typed list. Regenerate with scripts/mjml-spec/regenerate.
require('mjml'); // registers every component with mjml-core
const { components } = require('mjml-core');
const dependencies = require('mjml-validator').dependencies;

const out = {
  source: 'mjml ' + require('mjml/package.json').version + ' (npm): mjml-core components, mjml-validator dependencies',
  // attributes every tag takes (mjml-validator/lib/rules/validAttributes.js WHITELIST)
  global_attributes: ['mj-class', 'css-class'],
  // tags without a component that MJML still accepts (mjml-validator/lib/rules/validTag.js)
  componentless_tags: ['mj-all', 'mj-class', 'mj-selector', 'mj-html-attribute'],
  // the root element is read by mjml-core itself, not by a component (mjml-core/lib/index.js)
  root: { tag: 'mjml', attributes: ['dir', 'lang', 'owa'], children: ['mj-head', 'mj-body'] },
  components: {},
  children: {},
};
for (const name of Object.keys(components).sort()) {
  const C = components[name];
  out.components[name] = {
    ending_tag: !!C.endingTag,
    attributes: Object.fromEntries(Object.entries(C.allowedAttributes || {}).sort()),
  };
}
for (const tag of Object.keys(dependencies).sort()) {
  // a RegExp entry (mj-attributes takes any tag: /^.*^/) is written as {"regex": source}
  out.children[tag] = dependencies[tag].map((d) => (d instanceof RegExp ? { regex: d.source } : d));
}
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
