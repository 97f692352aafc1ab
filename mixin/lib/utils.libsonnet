{
  // selector returns the label matchers joined for use inside {...},
  // skipping empty ones (an empty exporterSelector selects everything).
  selector(matchers):: std.join(', ', [m for m in matchers if m != '']),

  // by returns "by (a, b)" for a list of labels.
  by(labels):: 'by (%s)' % std.join(', ', labels),

  // number formats a threshold the way PromQL and people write it (0.1,
  // not 0.10000000000000001).
  number(x):: if x == std.floor(x) then '%d' % x else '%g' % x,

  // githubAnchor returns the anchor GitHub gives a Markdown heading made of
  // letters and digits only.
  githubAnchor(heading):: std.asciiLower(heading),
}
