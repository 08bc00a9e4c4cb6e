([minText, palette]) => {
  const rgba = (css) => {
    const m = css.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [r, g, b, a === undefined ? 1 : a];
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c && c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const blend = (fg, opacity, bg) => fg.slice(0, 3).map((v, i) => v * opacity + bg[i] * (1 - opacity));
  const luminance = (c) => {
    const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const problems = [];
  const check = (el, what, paint, opacity, need) => {
    const fg = rgba(paint);
    if (!fg) { problems.push(`${what}: no colour (${paint})`); return; }
    // What it is drawn on: the chart's (or swatch's) surroundings, never its own paint.
    const bg = background((el.closest('svg') || el).parentElement);
    const shown = ratio(blend(fg, fg[3] * opacity, bg), bg);
    if (shown < need) problems.push(`${what}: contrast ${shown.toFixed(2)} < ${need} (${paint} on rgb(${bg.slice(0, 3)}))`);
  };
  const charts = Array.from(document.querySelectorAll('svg.chart'));
  if (charts.length < 3) problems.push(`only ${charts.length} charts`);
  for (const svg of charts) {
    const box = svg.getBoundingClientRect();
    if (box.width < 250 || box.height < 100) problems.push(`${svg.id}: ${box.width}x${box.height} px`);
    const labels = Array.from(svg.querySelectorAll(':scope > text'));
    labels.forEach((t, i) => {
      const what = `${svg.id} text "${t.textContent}"`;
      const r = t.getBoundingClientRect();
      // Its font size on the screen: user units times the chart's scale.
      const px = parseFloat(getComputedStyle(t).fontSize) * (box.width / svg.viewBox.baseVal.width);
      if (px < minText) problems.push(`${what}: ${px.toFixed(1)} px font`);
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
        problems.push(`${what}: outside its chart`);
      for (const other of labels.slice(i + 1)) {
        const o = other.getBoundingClientRect();
        if (r.left < o.right && o.left < r.right && r.top < o.bottom && o.top < r.bottom)
          problems.push(`${what} overlaps "${other.textContent}"`);
      }
      const s = getComputedStyle(t);
      check(t, what, s.fill, Number(s.fillOpacity) * Number(s.opacity), 4.5);
    });
    for (const line of svg.querySelectorAll('line, polyline')) {
      const s = getComputedStyle(line);
      check(line, `${svg.id} ${line.tagName} ${line.dataset.series || 'axis'}`, s.stroke, Number(s.strokeOpacity), 3);
    }
    for (const bar of svg.querySelectorAll('rect[data-count]')) {
      const s = getComputedStyle(bar);
      check(bar, `${svg.id} bar`, s.fill, Number(s.fillOpacity), 3);
    }
  }
  for (const caption of document.querySelectorAll('.charts figcaption, .charts .legend li')) {
    check(caption, `caption "${caption.textContent.trim().slice(0, 30)}"`, getComputedStyle(caption).color, 1, 4.5);
  }
  for (const swatch of document.querySelectorAll('.charts .swatch, .charts .legend rect')) {
    const s = getComputedStyle(swatch);
    check(swatch, `swatch ${swatch.className.baseVal ?? swatch.className}`, swatch.tagName === 'rect' ? s.fill : s.backgroundColor, 1, 3);
  }
  // Every colour a series may get, not only those this page's data drew.
  const card = document.querySelector('.charts');
  for (const colour of palette) {
    const probe = document.createElement('span');
    probe.style.color = colour;
    card.appendChild(probe);
    check(probe, `palette ${colour}`, getComputedStyle(probe).color, 1, 3);
    probe.remove();
  }
  return problems;
}
